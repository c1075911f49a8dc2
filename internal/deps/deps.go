// Package deps pins the modules the project uses until the packages that use them land.
package deps

import (
	_ "github.com/cavaliergopher/cpio"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/klauspost/compress/gzip"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/ulikunitz/xz"
	_ "golang.org/x/tools/txtar"
	_ "gonum.org/v1/plot"
)
