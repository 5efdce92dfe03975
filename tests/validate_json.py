"""Validates texts against JSON Schemas with python3-jsonschema (Draft
2020-12), for test_json_schema: each line of the file given is
{"schema": ..., "text": "..."}; every text must parse as JSON and be valid.
Formats are checked by shape (date, time, date-time, uuid). Prints one
line per failure and a closing count; exits 1 on any failure."""
import json
import re
import sys

import jsonschema

SHAPES = {
    "date": r"\d{4}-\d{2}-\d{2}",
    "time": r"\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
    "uuid": r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
}
SHAPES["date-time"] = SHAPES["date"] + "T" + SHAPES["time"]

checker = jsonschema.FormatChecker(formats=())
for name, shape in SHAPES.items():
    checker.checks(name)(lambda value, shape=shape: not isinstance(value, str) or re.fullmatch(shape, value) is not None)

failures = 0
count = 0
schemas = set()
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        case = json.loads(line)
        count += 1
        schemas.add(json.dumps(case["schema"], sort_keys=True))
        try:
            value = json.loads(case["text"])
            jsonschema.Draft202012Validator(case["schema"], format_checker=checker).validate(value)
        except (ValueError, jsonschema.ValidationError) as e:
            failures += 1
            print("invalid: %s\n  schema: %s\n  text: %r" % (str(e).splitlines()[0], json.dumps(case["schema"]), case["text"]))
print("validated %d texts of %d schemas, %d invalid" % (count, len(schemas), failures))
sys.exit(1 if failures else 0)
