package bot

import "sort"

// Commands returns the registered commands, sorted by name: what help lists and what a user
// can type.
func (b *Bot) Commands() []Command {
	out := make([]Command, 0, len(b.commands))
	for _, c := range b.commands {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
