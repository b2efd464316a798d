"""Drop-in fronts with the call signatures of other active-learning libraries."""
