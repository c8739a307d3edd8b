"""`python -m mempill.mcp`: serve one agent's memory over MCP stdio."""

import sys

from mempill.mcp import run

if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
