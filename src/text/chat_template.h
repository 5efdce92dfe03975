/* Building the token ids of a conversation in a chat template, message by
 * message: used whole by llama2_chat_encode and turn by turn by the chat
 * loop, whose earlier turns are already in the model's context. */
#ifndef LLAMA2_CHAT_TEMPLATE_H
#define LLAMA2_CHAT_TEMPLATE_H

#include "llama2.h"

typedef enum l2_chat_role { L2_ROLE_SYSTEM, L2_ROLE_USER, L2_ROLE_ASSISTANT } l2_chat_role;

typedef struct l2_chat_builder {
    const llama2_tokenizer *tokenizer;
    llama2_chat_template tmpl;
    int *ids; /* the ids so far */
    int n_ids, cap_ids;
    char *text; /* text not yet encoded (NUL-terminated) */
    size_t n_text, cap_text;
    int bos_pending;    /* BOS goes before the next text or id */
    const char *system; /* LLAMA2: the system prompt, for the next user turn */
    llama2_status status; /* the first failure; later calls do nothing */
    llama2_error *err;
} l2_chat_builder;

/* A builder; at_start: the ids begin a context (BOS first). */
void l2_chat_builder_init(l2_chat_builder *b, const llama2_tokenizer *tokenizer, llama2_chat_template tmpl,
                          int at_start, llama2_error *err);
/* One message, as the template writes it. */
void l2_chat_add_message(l2_chat_builder *b, l2_chat_role role, const char *content);
/* The opening of the assistant's reply, which sampling continues. */
void l2_chat_add_reply_start(l2_chat_builder *b);
/* A token as it is (one the model sampled and that was not fed yet). */
void l2_chat_add_token(l2_chat_builder *b, int token);
/* Ends an assistant reply that is already in the context; `ended`: the model
 * wrote the template's end of message itself (EOS, or ChatML's "<|im_end|>"). */
void l2_chat_close_reply(l2_chat_builder *b, int ended);
/* The ids (malloc'd; the caller frees them), or the first failure. The
 * builder is left empty either way. */
llama2_status l2_chat_builder_finish(l2_chat_builder *b, int **ids, int *n_ids);

#endif
