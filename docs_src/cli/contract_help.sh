errorkit contract --help
errorkit contract save --help
errorkit contract check --help
