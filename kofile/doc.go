// Package kofile reads Linux kernel module files (.ko, .ko.xz, .ko.zst, .ko.gz) in the shape of
// debug/elf.
//
// Contract:
//   - Compression is detected by magic bytes (zstd 28 B5 2F FD, xz FD 37 7A 58 5A 00, gzip 1F 8B),
//     never by file name. ReadImage returns the decompressed ELF image, i.e. what init_module(2)
//     takes; Open decompresses as needed and parses the image.
//   - The ELF reader accepts ELFCLASS32 and ELFCLASS64 in both byte orders and applies the same
//     validity rules as kmod's libkmod-elf.c (section header entry size, section table and
//     section name table inside the file, name table NUL-terminated). Sections that lie outside
//     the file are skipped when looking a section up by name, as kmod does.
//   - Corrupt or truncated input, compressed or not, gives a *FormatError naming the file and
//     the offset; nothing in this package panics on any input. errors.Is(err, ErrNotELF) tells
//     "not an ELF file at all" (kmod: ENOEXEC) from a damaged ELF file (kmod: EINVAL);
//     errors.Is(err, ErrNoSection) tells a missing section (kmod: ENODATA).
//   - Modinfo, Versions, Exports, ExportedSymbols, Undefined and Signature return what kmod 30's
//     libkmod returns for kmod_module_get_info, kmod_elf_get_modversions, kmod_elf_get_symbols,
//     kmod_elf_get_dependency_symbols and kmod_module_signature_info (OpenSSL build), in the
//     same order.
//   - A File holds the whole decompressed image in memory; Open closes the file it opened
//     before returning, so Close only drops the image. Close never closes a reader passed to
//     NewFile.
package kofile
