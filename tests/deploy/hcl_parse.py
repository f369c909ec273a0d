"""Parse every .tf file given (or found under the given directories) with
python-hcl2 and exit non-zero, naming each file, if any fails to parse.

checkov reports a file it cannot parse and still exits 0, so it cannot be
the syntax gate; this is.
"""

import pathlib
import sys

import hcl2


def tf_files(args):
    for arg in args:
        path = pathlib.Path(arg)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.tf") if ".terraform" not in p.parts)
        else:
            yield path


def main(args):
    files = list(tf_files(args))
    if not files:
        print("hcl_parse: no .tf files found in " + " ".join(args), file=sys.stderr)
        return 2
    failed = 0
    for path in files:
        try:
            with path.open(encoding="utf-8") as handle:
                hcl2.load(handle)
        except Exception as error:  # lark raises several exception types
            failed += 1
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            print(f"hcl_parse: {path}: {first_line}", file=sys.stderr)
    print(f"hcl_parse: {len(files) - failed} of {len(files)} files parsed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
