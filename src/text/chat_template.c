/*
 * Chat templates: how a conversation is written for a model tuned on it.
 *
 *   llama2  Llama 2 chat (https://github.com/meta-llama/llama/blob/main/llama/generation.py),
 *           as llama2.c writes it: <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]
 *           for the first turn, <s>[INST] {user} [/INST] for later ones, and a
 *           reply followed by </s>.
 *   chatml  <|im_start|>{role}\n{content}<|im_end|>\n per message
 *           (https://github.com/openai/openai-python/blob/release-v0.28.0/chatml.md).
 *   zephyr  <|{role}|>\n{content}</s>\n per message: TinyLlama-1.1B-Chat's format.
 *   none    the contents alone, each ending with a newline.
 *   llama3  Llama 3 (its tokenizer_config.json's chat_template):
 *           <|begin_of_text|> once, then <|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>
 *           per message, the content trimmed; the header tokens are ids, the
 *           text between them plain text (a user typing "<|eot_id|>" gets text).
 *
 * <s> and </s> are the ids BOS and EOS, never text: llama2.c's tokenizer has
 * no piece that spells them. Text between them is encoded as llama2.c encodes
 * a prompt, with its dummy-prefix space.
 */
#include <stdlib.h>
#include <string.h>

#include "chat_template.h"
#include "platform/checks.h"

static const char *const template_names[] = {"llama2", "chatml", "zephyr", "none", "llama3"};
#define N_TEMPLATES (int)(sizeof template_names / sizeof template_names[0])

int llama2_chat_template_from_name(const char *name, llama2_chat_template *out) {
    for (int i = 0; name && i < N_TEMPLATES; i++)
        if (strcmp(name, template_names[i]) == 0) {
            *out = (llama2_chat_template)i;
            return 1;
        }
    return 0;
}

const char *llama2_chat_template_name(llama2_chat_template tmpl) {
    return (int)tmpl >= 0 && (int)tmpl < N_TEMPLATES ? template_names[tmpl] : NULL;
}

const char *const *llama2_chat_template_stops(llama2_chat_template tmpl) {
    static const char *const chatml[] = {"<|im_end|>", NULL};
    static const char *const none[] = {NULL};
    return tmpl == LLAMA2_TEMPLATE_CHATML ? chatml : none;
}

/* ------------------------------------------------------------ the builder */

void l2_chat_builder_init(l2_chat_builder *b, const llama2_tokenizer *tokenizer, llama2_chat_template tmpl,
                          int at_start, llama2_error *err) {
    memset(b, 0, sizeof *b);
    b->tokenizer = tokenizer;
    b->tmpl = tmpl;
    b->bos_pending = at_start;
    b->err = err;
}

static int grow(void **p, size_t *cap, size_t need, size_t item) {
    if (need <= *cap) return 1;
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < need) cap2 *= 2;
    void *q = realloc(*p, cap2 * item);
    if (!q) return 0;
    *p = q;
    *cap = cap2;
    return 1;
}

static void out_of_memory(l2_chat_builder *b) {
    if (b->status == LLAMA2_OK) b->status = l2_fail(b->err, LLAMA2_E_NOMEM, "out of memory for a chat turn");
}

static void add_text(l2_chat_builder *b, const char *text) {
    size_t len = strlen(text);
    if (b->status != LLAMA2_OK) return;
    if (!grow((void **)&b->text, &b->cap_text, b->n_text + len + 1, 1)) return out_of_memory(b);
    memcpy(b->text + b->n_text, text, len + 1);
    b->n_text += len;
}

/* Encodes the waiting text (BOS first when pending, or when `bos`). */
static void encode_text(l2_chat_builder *b, int bos) {
    if (b->status != LLAMA2_OK) return;
    bos = bos || b->bos_pending;
    if (b->n_text == 0 && !bos) return;
    const char *text = b->text ? b->text : "";
    size_t cap = b->cap_ids;
    if (!grow((void **)&b->ids, &cap, (size_t)b->n_ids + llama2_tokenize_capacity(b->n_text), sizeof *b->ids))
        return out_of_memory(b);
    b->cap_ids = (int)cap;
    int n = 0;
    b->status = llama2_tokenize(b->tokenizer, text, bos, 0, b->ids + b->n_ids, &n, b->err);
    if (b->status != LLAMA2_OK) return;
    b->n_ids += n;
    b->n_text = 0;
    if (b->text) b->text[0] = '\0';
    b->bos_pending = 0;
}

void l2_chat_add_token(l2_chat_builder *b, int token) {
    encode_text(b, 0);
    if (b->status != LLAMA2_OK) return;
    size_t cap = b->cap_ids;
    if (!grow((void **)&b->ids, &cap, (size_t)b->n_ids + 1, sizeof *b->ids)) return out_of_memory(b);
    b->cap_ids = (int)cap;
    b->ids[b->n_ids++] = token;
}

/* Llama 2: a user turn is encoded on its own, with BOS, as llama2.c does. */
static void llama2_user_turn(l2_chat_builder *b, const char *user) {
    if (b->n_text > 0) encode_text(b, 0);
    if (b->system) {
        add_text(b, "[INST] <<SYS>>\n");
        add_text(b, b->system);
        add_text(b, "\n<</SYS>>\n\n");
    } else {
        add_text(b, "[INST] ");
    }
    add_text(b, user);
    add_text(b, " [/INST]");
    b->system = NULL;
    encode_text(b, 1);
}

/* Adds the special token spelled `name` (the llama3 template's). */
static void add_special(l2_chat_builder *b, const char *name) {
    if (b->status != LLAMA2_OK) return;
    int id = llama2_tokenizer_find(b->tokenizer, name);
    if (id < 0 || !llama2_tokenizer_is_special(b->tokenizer, id)) {
        b->status = l2_fail(b->err, LLAMA2_E_INVALID, "the llama3 chat template needs the special token %s, which the "
                                                      "tokenizer lacks", name);
        return;
    }
    l2_chat_add_token(b, id);
}

/* The content without the whitespace at either end (Jinja's trim). */
static void add_trimmed(l2_chat_builder *b, const char *content) {
    const char *end = content + strlen(content);
    while (*content == ' ' || (*content >= '\t' && *content <= '\r')) content++;
    while (end > content && (end[-1] == ' ' || (end[-1] >= '\t' && end[-1] <= '\r'))) end--;
    size_t n = (size_t)(end - content);
    char *copy = malloc(n + 1);
    if (!copy) return out_of_memory(b);
    memcpy(copy, content, n);
    copy[n] = '\0';
    add_text(b, copy);
    free(copy);
}

static const char *role_name(l2_chat_role role) {
    return role == L2_ROLE_SYSTEM ? "system" : role == L2_ROLE_USER ? "user" : "assistant";
}

void l2_chat_add_message(l2_chat_builder *b, l2_chat_role role, const char *content) {
    switch (b->tmpl) {
    case LLAMA2_TEMPLATE_LLAMA2:
        if (role == L2_ROLE_SYSTEM) {
            b->system = content[0] ? content : NULL;
        } else if (role == L2_ROLE_USER) {
            llama2_user_turn(b, content);
        } else {
            add_text(b, content);
            l2_chat_add_token(b, llama2_tokenizer_eos(b->tokenizer));
        }
        return;
    case LLAMA2_TEMPLATE_CHATML:
        add_text(b, "<|im_start|>");
        add_text(b, role_name(role));
        add_text(b, "\n");
        add_text(b, content);
        add_text(b, "<|im_end|>\n");
        return;
    case LLAMA2_TEMPLATE_ZEPHYR:
        add_text(b, "<|");
        add_text(b, role_name(role));
        add_text(b, "|>\n");
        add_text(b, content);
        l2_chat_add_token(b, llama2_tokenizer_eos(b->tokenizer));
        add_text(b, "\n");
        return;
    case LLAMA2_TEMPLATE_NONE:
        add_text(b, content);
        add_text(b, "\n");
        return;
    case LLAMA2_TEMPLATE_LLAMA3:
        add_special(b, "<|start_header_id|>");
        add_text(b, role_name(role));
        add_special(b, "<|end_header_id|>");
        add_text(b, "\n\n");
        add_trimmed(b, content);
        add_special(b, "<|eot_id|>");
        return;
    }
}

void l2_chat_add_reply_start(l2_chat_builder *b) {
    if (b->tmpl == LLAMA2_TEMPLATE_LLAMA3) {
        add_special(b, "<|start_header_id|>");
        add_text(b, "assistant");
        add_special(b, "<|end_header_id|>");
        add_text(b, "\n\n");
    }
    if (b->tmpl == LLAMA2_TEMPLATE_CHATML) add_text(b, "<|im_start|>assistant\n");
    if (b->tmpl == LLAMA2_TEMPLATE_ZEPHYR) add_text(b, "<|assistant|>\n");
}

void l2_chat_close_reply(l2_chat_builder *b, int ended) {
    switch (b->tmpl) {
    case LLAMA2_TEMPLATE_LLAMA2:
        if (!ended) l2_chat_add_token(b, llama2_tokenizer_eos(b->tokenizer));
        return;
    case LLAMA2_TEMPLATE_CHATML:
        if (!ended) add_text(b, "<|im_end|>");
        add_text(b, "\n");
        return;
    case LLAMA2_TEMPLATE_ZEPHYR:
        if (!ended) l2_chat_add_token(b, llama2_tokenizer_eos(b->tokenizer));
        add_text(b, "\n");
        return;
    case LLAMA2_TEMPLATE_NONE:
        add_text(b, "\n");
        return;
    case LLAMA2_TEMPLATE_LLAMA3:
        if (!ended) add_special(b, "<|eot_id|>");
        return;
    }
}

llama2_status l2_chat_builder_finish(l2_chat_builder *b, int **ids, int *n_ids) {
    encode_text(b, 0);
    llama2_status s = b->status;
    *ids = s == LLAMA2_OK ? b->ids : NULL;
    *n_ids = s == LLAMA2_OK ? b->n_ids : 0;
    if (s != LLAMA2_OK) free(b->ids);
    free(b->text);
    b->ids = NULL;
    b->text = NULL;
    b->n_ids = b->cap_ids = 0;
    b->n_text = b->cap_text = 0;
    return s;
}

/* ------------------------------------------------------------ the public call */

llama2_status llama2_chat_encode(const llama2_tokenizer *tokenizer, llama2_chat_template tmpl,
                                 const llama2_chat_message *messages, int n_messages, int add_assistant, int **ids,
                                 int *n_ids, llama2_error *err) {
    *ids = NULL;
    *n_ids = 0;
    if (!llama2_chat_template_name(tmpl)) return l2_fail(err, LLAMA2_E_INVALID, "unknown chat template %d", (int)tmpl);
    if (n_messages < 0 || (n_messages > 0 && !messages))
        return l2_fail(err, LLAMA2_E_INVALID, "%d messages", n_messages);
    l2_chat_builder b;
    l2_chat_builder_init(&b, tokenizer, tmpl, 1, err);
    for (int i = 0; i < n_messages; i++) {
        const char *role = messages[i].role, *content = messages[i].content;
        l2_chat_role r = L2_ROLE_USER;
        if (role && strcmp(role, "system") == 0)
            r = L2_ROLE_SYSTEM;
        else if (role && strcmp(role, "user") == 0)
            r = L2_ROLE_USER;
        else if (role && strcmp(role, "assistant") == 0)
            r = L2_ROLE_ASSISTANT;
        else
            b.status = l2_fail(err, LLAMA2_E_INVALID, "message %d: unknown role", i + 1);
        if (b.status == LLAMA2_OK && !content) b.status = l2_fail(err, LLAMA2_E_INVALID, "message %d: no content", i + 1);
        if (b.status == LLAMA2_OK && r == L2_ROLE_SYSTEM && i > 0)
            b.status = l2_fail(err, LLAMA2_E_INVALID, "message %d: a system message must come first", i + 1);
        if (b.status != LLAMA2_OK) break;
        l2_chat_add_message(&b, r, content);
    }
    /* Llama 2: a system prompt alone still needs a user turn to sit in. */
    if (tmpl == LLAMA2_TEMPLATE_LLAMA2 && b.system && b.status == LLAMA2_OK) l2_chat_add_message(&b, L2_ROLE_USER, "");
    if (add_assistant) l2_chat_add_reply_start(&b);
    return l2_chat_builder_finish(&b, ids, n_ids);
}
