"""Run the sandbox: ``python -m genesys_sandbox --port 8089`` (a development and test tool)."""

from genesys_sandbox.cli import main

if __name__ == "__main__":
    main()
