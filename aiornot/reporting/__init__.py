"""What people read: figures for the notebooks, the model card and the README blocks."""
