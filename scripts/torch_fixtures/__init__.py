"""One module per op family; each defines cases() (see make_torch_fixtures.py)."""
