errorkit store --help
errorkit store init --help
