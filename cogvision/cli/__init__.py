"""The `cogvision` command: a thin shell over the stage functions."""
