errorkit --help
