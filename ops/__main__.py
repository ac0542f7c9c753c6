from ops.cli import console

console()
