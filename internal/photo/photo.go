// Package photo checks and cleans photos that strangers upload: the
// content (not the name or the declared type) must be JPEG, PNG or WebP,
// it must stay under a size limit while it streams, and the metadata
// segments that can carry the place and the camera — EXIF (with GPS), XMP,
// IPTC, comments and text chunks — are dropped on the way through. Nothing
// is decoded: the containers are walked segment by segment, so a photo
// costs a small buffer, never its size, in memory.
//
// What is dropped: JPEG APP1 (EXIF, XMP), APP13 (IPTC) and COM segments,
// and whatever follows the JPEG's end (further images phones append);
// PNG eXIf, tEXt, zTXt, iTXt and tIME chunks; WebP EXIF and XMP chunks
// (and their flags in VP8X). Colour profiles stay. A consequence: the
// EXIF orientation goes too, so a phone photo taken sideways may show
// sideways.
//
// The dimensions each format declares (PNG's IHDR, JPEG's SOFn, WebP's
// VP8X canvas and VP8 and VP8L frames) are read on the way: a photo of
// more than MaxPixels is refused, so a few KiB cannot make every viewer
// allocate gigabytes.
//
// The functions are safe for concurrent use.
package photo

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Content types of accepted photos.
const (
	JPEG = "image/jpeg"
	PNG  = "image/png"
	WebP = "image/webp"
)

// ErrNotPhoto: the content is not a JPEG, PNG or WebP file, or is
// malformed. ErrTooLarge: it is over the limit. ErrTooManyPixels: its
// header declares more than MaxPixels.
var (
	ErrNotPhoto      = errors.New("photo: not a JPEG, PNG or WebP image")
	ErrTooLarge      = errors.New("photo: over the size limit")
	ErrTooManyPixels = fmt.Errorf("photo: more than %d pixels", MaxPixels)
)

// MaxPixels bounds the width × height a photo may declare: a few KiB can
// declare billions of pixels, which whoever views the photo must allocate
// to decode it. 50 megapixels is more than a phone's photo at full size.
const MaxPixels = 50_000_000

// Info describes a cleaned photo.
type Info struct {
	ContentType string
	Ext         string // "jpg", "png", "webp"
	Size        int64  // bytes written
}

// countingReader fails once more than max bytes have been read.
type countingReader struct {
	r   io.Reader
	n   int64
	max int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		return n, ErrTooLarge
	}
	return n, err
}

// Clean copies the photo read from r to w without its metadata, reading
// at most max bytes of r. w must be at its start; for WebP Clean seeks
// back to patch the container size. Errors: ErrNotPhoto, ErrTooLarge, or
// the reader's or writer's.
func Clean(w io.WriteSeeker, r io.Reader, max int64) (Info, error) {
	br := bufio.NewReaderSize(&countingReader{r: r, max: max}, 32<<10)
	head, err := br.Peek(12)
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return Info{}, err
		}
		return Info{}, ErrNotPhoto
	}
	cw := &countingWriter{w: w}
	var info Info
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		info = Info{ContentType: JPEG, Ext: "jpg"}
		err = cleanJPEG(cw, br)
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		info = Info{ContentType: PNG, Ext: "png"}
		err = cleanPNG(cw, br)
	case bytes.HasPrefix(head, []byte("RIFF")) && bytes.Equal(head[8:12], []byte("WEBP")):
		info = Info{ContentType: WebP, Ext: "webp"}
		err = cleanWebP(cw, br)
	default:
		return Info{}, ErrNotPhoto
	}
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Info{}, fmt.Errorf("%w: it ends too early", ErrNotPhoto)
		}
		return Info{}, err
	}
	info.Size = cw.n
	return info, nil
}

// checkPixels refuses dimensions over MaxPixels, and zero ones (a JPEG
// whose height a later DNL segment would give, which viewers size as
// they decode).
func checkPixels(w, h uint64) error {
	switch {
	case w == 0 || h == 0:
		return fmt.Errorf("%w: no dimensions in the header", ErrNotPhoto)
	case w*h > MaxPixels:
		return fmt.Errorf("%w: %d×%d", ErrTooManyPixels, w, h)
	}
	return nil
}

// peekHeader peeks at the n bytes of a header that start a segment of
// length have and returns them, or ErrNotPhoto when the segment is
// shorter.
func peekHeader(r *bufio.Reader, n int, have int64) ([]byte, error) {
	if have < int64(n) {
		return nil, fmt.Errorf("%w: header too short", ErrNotPhoto)
	}
	return r.Peek(n)
}

type countingWriter struct {
	w io.WriteSeeker
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func cleanJPEG(out io.Writer, r *bufio.Reader) error {
	// Scans are copied in the pieces between their 0xFF bytes: buffered,
	// so that a photo is not thousands of small writes.
	w := bufio.NewWriterSize(out, 32<<10)
	if err := walkJPEG(w, r); err != nil {
		return err
	}
	return w.Flush()
}

// walkJPEG copies a JPEG segment by segment up to its end (EOI), dropping
// the metadata segments and anything after the end: phones append further
// images there (MPF previews, gain maps) that carry their own EXIF. What
// follows the end is read (to hold the upload to its limit) and dropped.
// A file that ends without EOI ends where its data does.
func walkJPEG(w *bufio.Writer, r *bufio.Reader) error {
	var soi [2]byte
	if _, err := io.ReadFull(r, soi[:]); err != nil {
		return err
	}
	if _, err := w.Write(soi[:]); err != nil {
		return err
	}
	scanned := int64(-1) // bytes of image data; -1 before the first scan
	next := -1           // a marker a scan ended at, not yet handled
	for {
		var m byte
		if next >= 0 {
			m, next = byte(next), -1
		} else {
			b, err := r.ReadByte()
			if err != nil {
				return err
			}
			if b != 0xFF {
				return fmt.Errorf("%w: bad JPEG marker", ErrNotPhoto)
			}
			m, err = r.ReadByte()
			for err == nil && m == 0xFF { // fill bytes
				m, err = r.ReadByte()
			}
			if err != nil {
				return err
			}
		}
		switch {
		case m == 0xD9: // EOI: the end, whatever follows
			if scanned == 0 {
				return fmt.Errorf("%w: no JPEG image data", ErrNotPhoto)
			}
			if _, err := w.Write([]byte{0xFF, m}); err != nil {
				return err
			}
			// What follows is read and dropped: the upload as a whole
			// stays under the limit.
			if _, err := io.Copy(io.Discard, r); err != nil {
				return err
			}
			return nil
		case m == 0x01 || m >= 0xD0 && m <= 0xD7:
			if _, err := w.Write([]byte{0xFF, m}); err != nil {
				return err
			}
			continue
		}
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return err
		}
		n := int64(binary.BigEndian.Uint16(l[:]))
		if n < 2 {
			return fmt.Errorf("%w: bad JPEG segment length", ErrNotPhoto)
		}
		if m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC { // SOFn: precision, height, width
			b, err := peekHeader(r, 5, n-2)
			if err != nil {
				return err
			}
			if err := checkPixels(uint64(binary.BigEndian.Uint16(b[3:])), uint64(binary.BigEndian.Uint16(b[1:]))); err != nil {
				return err
			}
		}
		if m == 0xE1 || m == 0xED || m == 0xFE { // APP1 (EXIF, XMP), APP13 (IPTC), COM
			if _, err := io.CopyN(io.Discard, r, n-2); err != nil {
				return err
			}
			continue
		}
		if _, err := w.Write([]byte{0xFF, m, l[0], l[1]}); err != nil {
			return err
		}
		if _, err := io.CopyN(w, r, n-2); err != nil {
			return err
		}
		if m == 0xDA { // start of scan: its image data, up to the next marker
			marker, k, err := copyScan(w, r)
			scanned = max(scanned, 0) + k
			if errors.Is(err, io.EOF) { // no EOI: the data ends the file
				if scanned < 2 {
					return fmt.Errorf("%w: no JPEG image data", ErrNotPhoto)
				}
				return nil
			}
			if err != nil {
				return err
			}
			next = int(marker)
		}
	}
}

// copyScan copies a scan's entropy-coded data from r to w — where 0xFF is
// followed by 0x00 (a stuffed byte) or a restart marker — and returns the
// marker that ends it (the byte after its 0xFF, fill bytes skipped) and
// the bytes copied. At the end of r it returns io.EOF.
func copyScan(w *bufio.Writer, r *bufio.Reader) (byte, int64, error) {
	var n int64
	for {
		chunk, err := r.ReadSlice(0xFF)
		if errors.Is(err, bufio.ErrBufferFull) {
			k, err := w.Write(chunk)
			n += int64(k)
			if err != nil {
				return 0, n, err
			}
			continue
		}
		if err != nil {
			k, werr := w.Write(chunk)
			n += int64(k)
			if werr != nil {
				return 0, n, werr
			}
			return 0, n, err
		}
		k, err := w.Write(chunk[:len(chunk)-1])
		n += int64(k)
		if err != nil {
			return 0, n, err
		}
		m, err := r.ReadByte()
		for err == nil && m == 0xFF {
			m, err = r.ReadByte()
		}
		if err != nil {
			return 0, n, err
		}
		if m == 0x00 || m >= 0xD0 && m <= 0xD7 {
			w.WriteByte(0xFF)
			if err := w.WriteByte(m); err != nil {
				return 0, n, err
			}
			n += 2
			continue
		}
		return m, n, nil
	}
}

var pngDrop = map[string]bool{"eXIf": true, "tEXt": true, "zTXt": true, "iTXt": true, "tIME": true}

func cleanPNG(w io.Writer, r *bufio.Reader) error {
	var sig [8]byte
	if _, err := io.ReadFull(r, sig[:]); err != nil {
		return err
	}
	if _, err := w.Write(sig[:]); err != nil {
		return err
	}
	for first := true; ; first = false {
		var h [8]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return err
		}
		n := int64(binary.BigEndian.Uint32(h[:4]))
		typ := string(h[4:])
		if first && typ != "IHDR" || n > 1<<31 {
			return fmt.Errorf("%w: bad PNG chunk", ErrNotPhoto)
		}
		if first { // width, height
			b, err := peekHeader(r, 8, n)
			if err != nil {
				return err
			}
			if err := checkPixels(uint64(binary.BigEndian.Uint32(b)), uint64(binary.BigEndian.Uint32(b[4:]))); err != nil {
				return err
			}
		}
		if pngDrop[typ] {
			if _, err := io.CopyN(io.Discard, r, n+4); err != nil {
				return err
			}
			continue
		}
		if _, err := w.Write(h[:]); err != nil {
			return err
		}
		if _, err := io.CopyN(w, r, n+4); err != nil {
			return err
		}
		if typ == "IEND" {
			return nil
		}
	}
}

func le24(b []byte) uint32 { return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 }

func cleanWebP(w *countingWriter, r *bufio.Reader) error {
	var h [12]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return err
	}
	total := int64(binary.LittleEndian.Uint32(h[4:8])) - 4 // bytes of chunks
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	var vp8xAt int64 = -1
	var vp8xFlags byte
	for total > 0 {
		var c [8]byte
		if _, err := io.ReadFull(r, c[:]); err != nil {
			return err
		}
		n := int64(binary.LittleEndian.Uint32(c[4:]))
		padded := n + n&1
		total -= 8 + padded
		if total < 0 {
			return fmt.Errorf("%w: bad WebP chunk size", ErrNotPhoto)
		}
		switch string(c[:4]) {
		case "EXIF", "XMP ":
			if _, err := io.CopyN(io.Discard, r, padded); err != nil {
				return err
			}
			continue
		case "VP8X": // flags, 3 reserved bytes, canvas width-1 and height-1 (24 bits each)
			b, err := peekHeader(r, 10, n)
			if err != nil {
				return err
			}
			if err := checkPixels(1+uint64(le24(b[4:])), 1+uint64(le24(b[7:]))); err != nil {
				return err
			}
			vp8xAt = w.n + 8
			vp8xFlags = b[0] &^ 0x0C // no EXIF (0x08), no XMP (0x04)
		case "VP8 ": // frame tag (3), start code (3), width and height (14 bits each)
			b, err := peekHeader(r, 10, n)
			if err != nil {
				return err
			}
			if err := checkPixels(uint64(binary.LittleEndian.Uint16(b[6:])&0x3FFF), uint64(binary.LittleEndian.Uint16(b[8:])&0x3FFF)); err != nil {
				return err
			}
		case "VP8L": // signature 0x2f, then width-1 and height-1 (14 bits each)
			b, err := peekHeader(r, 5, n)
			if err != nil {
				return err
			}
			bits := binary.LittleEndian.Uint32(b[1:])
			if err := checkPixels(1+uint64(bits&0x3FFF), 1+uint64(bits>>14&0x3FFF)); err != nil {
				return err
			}
		}
		if _, err := w.Write(c[:]); err != nil {
			return err
		}
		if _, err := io.CopyN(w, r, padded); err != nil {
			return err
		}
	}
	end := w.n
	var size [4]byte
	binary.LittleEndian.PutUint32(size[:], uint32(end-8))
	if _, err := w.w.Seek(4, io.SeekStart); err != nil {
		return err
	}
	if _, err := w.w.Write(size[:]); err != nil {
		return err
	}
	if vp8xAt >= 0 {
		if _, err := w.w.Seek(vp8xAt, io.SeekStart); err != nil {
			return err
		}
		if _, err := w.w.Write([]byte{vp8xFlags}); err != nil {
			return err
		}
	}
	_, err := w.w.Seek(end, io.SeekStart)
	return err
}
