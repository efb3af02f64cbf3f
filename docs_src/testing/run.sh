pytest -q test_widgets.py                                  # in memory
pytest -q --errorkit-redis-url redis://127.0.0.1:6379/15   # all of them, the test on a real Redis too
