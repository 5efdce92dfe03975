/*
 * Chat input at a terminal, edited with libedit: the arrow keys, Ctrl-A/E,
 * and the history of this chat's lines. Built where libedit is installed
 * (the Makefile finds it with pkg-config); elsewhere, or where standard
 * input or output is not a terminal, there is no editor and lines are read
 * as they come.
 */
#ifndef LLAMA2_CLI_LINE_EDIT_H
#define LLAMA2_CLI_LINE_EDIT_H

typedef struct cli_line_editor cli_line_editor;

/* An editor on standard input and output, or NULL (no libedit, not a
 * terminal, or it cannot be had). */
cli_line_editor *cli_line_editor_open(const char *program);

/* Reads a line after showing `prompt`: 1 with *line (malloc'd, without its
 * newline; a non-empty one joins the history), 0 at the end of input, -1
 * when a Ctrl-C (caught with l2_interrupt_catch) ends the wait; it is taken. */
int cli_line_editor_read(cli_line_editor *e, const char *prompt, char **line);

void cli_line_editor_close(cli_line_editor *e);

#endif
