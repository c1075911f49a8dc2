package modprobe

// prependEnvOptions is kmod's prepend_options_from_env: MODPROBE_OPTIONS split on spaces, a
// word that starts with a quote runs to the matching quote (quotes removed), a quote inside a
// word is removed with its partner, and the words are inserted after args[0].
func prependEnvOptions(args []string, env string, hasEnv bool) []string {
	if !hasEnv || len(args) == 0 {
		return args
	}
	var words []string
	s := []byte(env)
	start := 0
	quote := -1
	i := 0
	for i < len(s) {
		c := s[i]
		if quote < 0 {
			if c == ' ' {
				words = append(words, string(s[start:i]))
				start = i + 1
			} else if c == '"' || c == '\'' {
				quote = i
			}
			i++
			continue
		}
		if c == s[quote] {
			if quote == start {
				words = append(words, string(s[start+1:i]))
				start = i + 1
				i++
			} else {
				// Drop both quotes and keep scanning the same word.
				s = append(s[:i], s[i+1:]...)
				s = append(s[:quote], s[quote+1:]...)
				i--
			}
			quote = -1
			continue
		}
		i++
	}
	if start < len(s) {
		words = append(words, string(s[start:]))
	}
	out := make([]string, 0, len(args)+len(words))
	out = append(out, args[0])
	out = append(out, words...)
	return append(out, args[1:]...)
}
