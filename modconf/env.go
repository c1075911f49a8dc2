package modconf

// SplitOptions splits the value of MODPROBE_OPTIONS into arguments as kmod's modprobe does
// (prepend_options_from_env). modprobe puts them right after argv[0], before its own
// arguments. Each space ends an argument, so consecutive spaces give empty arguments; a
// '"' or '\” opens a quote in which spaces do not split: a quote that starts an argument
// ends it (the quotes are dropped and what follows the closing quote starts a new argument),
// a quote inside an argument is removed with its closing quote, an unclosed quote is kept.
func SplitOptions(s string) []string {
	if i := indexNUL(s); i >= 0 {
		s = s[:i]
	}
	b := []byte(s)
	var args []string
	str := 0      // start of the current argument
	quote := -1   // index of the opening quote, -1 outside quotes
	end := len(b) // end of the live text (quote removal shortens it)
	i := 0
	for ; i < end; i++ {
		if quote < 0 {
			switch b[i] {
			case ' ':
				args = append(args, string(b[str:i]))
				str = i + 1
			case '"', '\'':
				quote = i
			}
			continue
		}
		if b[i] != b[quote] {
			continue
		}
		if quote == str {
			args = append(args, string(b[str+1:i]))
			str = i + 1
		} else {
			// drop the opening and the closing quote
			copy(b[quote:], b[quote+1:i])
			copy(b[i-1:], b[i+1:end])
			end -= 2
			i -= 2
		}
		quote = -1
	}
	if str < i {
		args = append(args, string(b[str:end]))
	}
	return args
}

func indexNUL(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return i
		}
	}
	return -1
}
