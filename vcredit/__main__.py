from vcredit.cli import main

main()
