/* Subcommands of the lsllama tool. Each returns the process exit status and
 * prints its own errors (prefixed "lsllama <cmd>: ") to stderr. */
#ifndef LL_CLI_COMMANDS_H
#define LL_CLI_COMMANDS_H

int cmd_inspect(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_plot(int argc, char **argv);

#endif
