pip install "errorkit[metrics]"  # prometheus-client
