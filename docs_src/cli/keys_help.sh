errorkit keys --help
errorkit keys issue --help
