#!/bin/sh
# Writes a C file holding a file's bytes, for the chat page compiled into
# llama2-server: embed.sh FILE NAME > out.c defines NAME[] and NAME_len
# (declared in server/webui.h). Only od and sed: no xxd needed.
set -eu
printf '/* Generated from %s by server/embed.sh: do not edit. */\n' "$1"
printf '#include "webui.h"\n\nconst unsigned char %s[] = {\n' "$2"
od -An -v -tx1 "$1" | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g' -e '/^$/d'
printf '};\nconst size_t %s_len = sizeof %s;\n' "$2" "$2"
