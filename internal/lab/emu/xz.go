package emu

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
)

// xzStore wraps data in an .xz container (the .xz file format 1.1.0,
// tukaani.org/xz/xz-file-format.txt) whose one LZMA2 block holds only
// uncompressed chunks (LZMA2 control bytes 0x01 and 0x02): a valid .xz
// that any xz decoder reads, made without a compressor. The lab's
// distribution sets (fetch) are made with it, so that ezjail's
// `xzdec base.txz | tar …` runs a real decoder (busybox's).
func xzStore(data []byte) []byte {
	var out bytes.Buffer
	le32 := func(v uint32) []byte { b := make([]byte, 4); binary.LittleEndian.PutUint32(b, v); return b }
	// Stream header: magic, flags (check type 1 = CRC32), CRC32 of flags.
	flags := []byte{0x00, 0x01}
	out.Write([]byte{0xFD, '7', 'z', 'X', 'Z', 0x00})
	out.Write(flags)
	out.Write(le32(crc32.ChecksumIEEE(flags)))
	// Block header: size/4-1, block flags (one filter, no sizes), filter
	// LZMA2 (0x21) with one property byte (dictionary size), padding, CRC32.
	hdr := []byte{0x02, 0x00, 0x21, 0x01, 0x16, 0x00, 0x00, 0x00}
	blockStart := out.Len()
	out.Write(hdr)
	out.Write(le32(crc32.ChecksumIEEE(hdr)))
	// LZMA2 uncompressed chunks of at most 64 KiB, then the end marker.
	first := true
	for rest := data; len(rest) > 0; {
		n := len(rest)
		if n > 65536 {
			n = 65536
		}
		ctl := byte(0x02)
		if first {
			ctl = 0x01 // dictionary reset
			first = false
		}
		out.Write([]byte{ctl, byte((n - 1) >> 8), byte(n - 1)})
		out.Write(rest[:n])
		rest = rest[n:]
	}
	out.WriteByte(0x00)
	unpadded := out.Len() - blockStart + 4 // + the check field
	for (out.Len()-blockStart)%4 != 0 {
		out.WriteByte(0)
	}
	out.Write(le32(crc32.ChecksumIEEE(data)))
	// Index: indicator, one record (unpadded size, uncompressed size), padding, CRC32.
	var idx bytes.Buffer
	idx.WriteByte(0x00)
	idx.Write(vli(1))
	idx.Write(vli(uint64(unpadded)))
	idx.Write(vli(uint64(len(data))))
	for idx.Len()%4 != 0 {
		idx.WriteByte(0)
	}
	idx.Write(le32(crc32.ChecksumIEEE(idx.Bytes())))
	out.Write(idx.Bytes())
	// Stream footer: CRC32, backward size, flags, magic.
	back := le32(uint32(idx.Len()/4 - 1))
	foot := append(back, flags...)
	out.Write(le32(crc32.ChecksumIEEE(foot)))
	out.Write(foot)
	out.Write([]byte{'Y', 'Z'})
	return out.Bytes()
}

// vli is the .xz multibyte integer encoding.
func vli(v uint64) []byte {
	var b []byte
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}
