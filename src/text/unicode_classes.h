/* The Unicode classes the byte-level BPE pre-tokenizer's split needs:
 * letters (\p{L}) and numbers (\p{N}), from generated range tables
 * (unicode_classes.c, tools/gen_unicode_classes.py). */
#ifndef LLAMA2_TEXT_UNICODE_CLASSES_H
#define LLAMA2_TEXT_UNICODE_CLASSES_H

/* The Unicode version the tables come from, e.g. "15.1.0". */
extern const char l2_unicode_version[];

int l2_unicode_is_letter(unsigned cp);
int l2_unicode_is_number(unsigned cp);

#endif
