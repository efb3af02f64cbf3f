errorkit docs --help
