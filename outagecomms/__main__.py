from outagecomms.cli import main

if __name__ == "__main__":  # guarded: dispatch worker processes import this module too
    main()
