from minisched.cli import main

main()
