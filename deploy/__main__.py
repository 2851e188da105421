"""`python -m deploy predict|info|verify ...` (and `export`): the same code as `edgevision` runs for them."""

import sys


def main() -> int:
    if sys.argv[1:2] == ["export"]:
        from deploy.export.cli import main as export_main

        return export_main(sys.argv[1:])
    from deploy.cli import main as runtime_main

    return runtime_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
