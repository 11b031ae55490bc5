from outagecomms.cli import main

main()
