// Package catalogtest checks what the Traefik plugin catalog reads of the repository: every
// plugin manifest (.traefik.yml) has the required keys, its testData configures a middleware
// that real Traefik builds, and the suite's icon (iconPath) is a PNG this package can
// regenerate byte for byte (cmd/catalogicon writes it).
package catalogtest

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
)

// IconPath is the suite's catalog icon, relative to the repository root (the root
// .traefik.yml's iconPath).
const IconPath = ".assets/icon.png"

// Icon draws the catalog icon: a 128×128 shield in the gateway's blue with a white keyhole,
// on a transparent background. Deterministic, so the committed file can be checked.
func Icon() ([]byte, error) {
	const size = 128
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	blue := color.NRGBA{R: 0x1f, G: 0x4e, B: 0x8c, A: 0xff}
	white := color.NRGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xff}
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			fx, fy := float64(x)-63.5, float64(y)
			// Shield: straight sides down to y=70, then a point at the bottom.
			half := 52.0
			if fy > 70 {
				half = 52 * (120 - fy) / 50
			}
			if fy < 10 || fy > 120 || fx < -half || fx > half {
				continue
			}
			img.SetNRGBA(x, y, blue)
			// Keyhole: a disc and a stem below it.
			dx, dy := fx, fy-50
			if dx*dx+dy*dy <= 14*14 || (fy >= 50 && fy <= 90 && fx >= -6 && fx <= 6) {
				img.SetNRGBA(x, y, white)
			}
		}
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
