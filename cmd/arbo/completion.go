package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCompletionCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print the shell completion script for bash, zsh or fish",
		Long: `completion prints a script that makes your shell complete arbo's commands,
flags and file names.

  bash:  arbo completion bash > /etc/bash_completion.d/arbo
         (or: source <(arbo completion bash) in ~/.bashrc; needs bash-completion)
  zsh:   arbo completion zsh > "${fpath[1]}/_arbo"
         (compinit must be enabled: autoload -U compinit; compinit)
  fish:  arbo completion fish > ~/.config/fish/completions/arbo.fish`,
		Args:                  cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		ValidArgs:             []string{"bash", "zsh", "fish"},
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(g.stdout, true)
			case "zsh":
				return root.GenZshCompletion(g.stdout)
			case "fish":
				return root.GenFishCompletion(g.stdout, true)
			}
			return fmt.Errorf("completion %q: want bash, zsh or fish", args[0])
		},
	}
}
