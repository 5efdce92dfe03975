/* Chat input at a terminal with libedit (line_edit.h). */
#include <stdlib.h>
#include <string.h>

#include "line_edit.h"

#ifndef LLAMA2_WITH_LIBEDIT

cli_line_editor *cli_line_editor_open(const char *program) {
    (void)program;
    return NULL;
}

int cli_line_editor_read(cli_line_editor *e, const char *prompt, char **line) {
    (void)e;
    (void)prompt;
    (void)line;
    return 0;
}

void cli_line_editor_close(cli_line_editor *e) { (void)e; }

#else

#include <histedit.h>
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <unistd.h>
#include <wchar.h>

#include "platform/platform.h"

struct cli_line_editor {
    EditLine *el;
    History *history;
    const char *prompt;
    int interrupted; /* the last read ended at a Ctrl-C */
};

static char *show_prompt(EditLine *el) {
    cli_line_editor *e = NULL;
    el_get(el, EL_CLIENTDATA, &e);
    return (char *)(e && e->prompt ? e->prompt : "");
}

/* libedit's input: a character from l2_stdin_read, so that a Ctrl-C ends
 * the wait (libedit's own read would resume after it). -1 at a Ctrl-C. */
static int get_char(EditLine *el, wchar_t *c) {
    cli_line_editor *e = NULL;
    el_get(el, EL_CLIENTDATA, &e);
    mbstate_t state;
    memset(&state, 0, sizeof state);
    for (;;) {
        if (l2_interrupt_take()) {
            e->interrupted = 1;
            return -1;
        }
        char byte;
        long n = l2_stdin_read(&byte, 1);
        if (n == L2_READ_INTERRUPTED) continue; /* taken above */
        if (n <= 0) return n == 0 ? 0 : -1;
        size_t r = mbrtowc(c, &byte, 1, &state);
        if (r == (size_t)-2) continue; /* more bytes of the character to come */
        if (r == (size_t)-1) {         /* not a character here: skipped */
            memset(&state, 0, sizeof state);
            continue;
        }
        return 1;
    }
}

cli_line_editor *cli_line_editor_open(const char *program) {
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) return NULL;
    /* libedit reads and shows characters: UTF-8 ones need a UTF-8 locale. */
    if (!setlocale(LC_CTYPE, "") || strcmp(nl_langinfo(CODESET), "UTF-8") != 0) setlocale(LC_CTYPE, "C.UTF-8");
    cli_line_editor *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->el = el_init(program, stdin, stdout, stderr);
    e->history = history_init();
    if (!e->el || !e->history) {
        cli_line_editor_close(e);
        return NULL;
    }
    HistEvent ev;
    history(e->history, &ev, H_SETSIZE, 500);
    history(e->history, &ev, H_SETUNIQUE, 1);
    el_set(e->el, EL_CLIENTDATA, e);
    el_set(e->el, EL_PROMPT, show_prompt);
    el_set(e->el, EL_EDITOR, "emacs");
    el_set(e->el, EL_HIST, history, e->history);
    el_set(e->el, EL_GETCFN, get_char);
    el_source(e->el, NULL); /* the user's ~/.editrc, as other libedit programs */
    el_set(e->el, EL_PREP_TERM, 1);
    return e;
}

int cli_line_editor_read(cli_line_editor *e, const char *prompt, char **line) {
    e->prompt = prompt;
    e->interrupted = 0;
    int count = 0;
    const char *got = el_gets(e->el, &count);
    /* The terminal stays in the editor's mode between lines too (el_gets
     * leaves it in the usual one): a key typed while a reply is written
     * waits for the next line as the editor reads it, where the usual mode
     * would have taken Ctrl-D as its own end of input. Ctrl-C still sends
     * SIGINT. */
    el_set(e->el, EL_PREP_TERM, 1);
    if (!got || count <= 0) return e->interrupted ? -1 : 0;
    size_t len = strlen(got);
    if (len > 0 && got[len - 1] == '\n') len--;
    if (!(*line = malloc(len + 1))) return 0;
    memcpy(*line, got, len);
    (*line)[len] = '\0';
    if (len > 0) {
        HistEvent ev;
        history(e->history, &ev, H_ENTER, *line);
    }
    return 1;
}

void cli_line_editor_close(cli_line_editor *e) {
    if (!e) return;
    if (e->el) {
        el_set(e->el, EL_PREP_TERM, 0);
        el_end(e->el);
    }
    if (e->history) history_end(e->history);
    free(e);
}

#endif
