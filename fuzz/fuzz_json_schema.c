/*
 * libFuzzer target: arbitrary bytes as a JSON Schema, converted to a
 * grammar (src/schema/) and compiled. It must succeed or fail with a
 * one-line message: "line:column: ..." for bad JSON, "#...: ..." (where in
 * the schema) for what is not supported; never a crash, a hang or memory
 * beyond the limits. A grammar made is then matched against a few texts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "llama2.h"
#include "schema/json_schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    llama2_grammar *g = NULL;
    llama2_error err = {0};
    llama2_status s = l2_json_schema_grammar((const char *)data, size, &g, &err);
    fuzz_check_message(s, &err);
    if (s == LLAMA2_E_INVALID && err.message[0] != '#' && (err.message[0] < '0' || err.message[0] > '9')) {
        fprintf(stderr, "fuzz_json_schema: a message that says not where: %s\n", err.message);
        abort();
    }
    if (s != LLAMA2_OK) return 0;
    static const char *texts[] = {"{}", "[]", "\"a\"", "1", "-0.5e3", "true", "null", "{\"a\": [1, \"b\"]}"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) llama2_grammar_match(g, texts[i], strlen(texts[i]));
    llama2_grammar_free(g);
    return 0;
}
