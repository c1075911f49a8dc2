package deps
import (
	_ "golang.org/x/sys/unix"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/klauspost/compress/gzip"
	_ "github.com/ulikunitz/xz"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/google/go-cmp/cmp"
	_ "golang.org/x/sync/singleflight"
	_ "github.com/cavaliergopher/cpio"
	_ "gonum.org/v1/plot"
	_ "golang.org/x/tools/txtar"
)
