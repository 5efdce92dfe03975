#!/usr/bin/python3
"""For test_convert: loads a tokenizer.model with SentencePiece (Debian's
python3-sentencepiece) and checks that it encodes each sample prompt of
llama2.c's goldens/tokens.tsv made for the given tokenizer.bin to the ids
recorded there. Prompts that are not valid UTF-8 are left out (SentencePiece
takes text, not bytes). Prints a count; exits 1 on the first mismatch.

    sentencepiece_check.py TOKENIZER.model TOKENS.tsv TOKENIZER_BIN_NAME
"""
import csv
import sys

import sentencepiece


def main():
    model, table, name = sys.argv[1:4]
    sp = sentencepiece.SentencePieceProcessor(model_file=model)
    checked = invalid = 0
    with open(table, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["tokenizer"] != name:
                continue
            try:
                text = bytes.fromhex(row["prompt_hex"]).decode("utf-8")
            except UnicodeDecodeError:
                invalid += 1
                continue
            want = [int(i) for i in row["ids"].split()]
            got = sp.encode(text)
            if row["bos"] == "1":
                got = [sp.bos_id()] + got
            if row["eos"] == "1":
                got = got + [sp.eos_id()]
            if got != want:
                print(f"{name}: {row['name']}: SentencePiece gives {got}, llama2.c {want}")
                return 1
            checked += 1
    if checked == 0:
        print(f"{name}: no prompts in {table}")
        return 1
    print(f"{name}: {checked} prompts encode to llama2.c's ids ({invalid} not UTF-8, left out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
