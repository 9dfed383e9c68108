package sources

import (
	"errors"
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/gitpace/gitpace/sources/textenc"
)

// File names of the repository layout gitpace reads (see package manifest)
// and writes (see Pause, Resume and Promote).
const (
	// PauseFile is the PAUSE marker. This is its whole rule; the code that
	// applies each part is named.
	//   - Where: in a directory below the source path it pauses every app at
	//     or below that directory; at the root of the source path, every app.
	//     With several, the one nearest the root is reported
	//     (manifest.Pauses.For, the one place that decides).
	//   - Reason: its first non-empty line, trimmed (manifest.FindPauses);
	//     `gitpace pause --reason` writes it (Pause).
	//   - What it freezes, while committed: no newer revision of the app is
	//     applied, rollbacks included (policies.PauseGate); the app's
	//     Deployments rolling out are paused with spec.paused (the agent's
	//     freeze); a BCS rollout finishes the cycle in flight and starts no
	//     other (package paced, Controls.Paused), though a revert still
	//     cancels it. Removing it (`gitpace resume`, Resume) unpauses, then
	//     the newest revision goes on.
	PauseFile = "PAUSE"
	// PromoteFile in an app directory approves manual rollout cycles; its
	// content is a Promotion in YAML.
	PromoteFile = "PROMOTE"
	// WavePromoteFile at the root of the source path approves manual waves
	// (gitpace.yaml waves); its content is WavePromotions in YAML,
	// written by `gitpace promote --wave N` (PromoteWave).
	WavePromoteFile = "PROMOTE-WAVES"
	// PolicyFile at the root of the source path holds policies; it is not a
	// manifest.
	PolicyFile = "gitpace.yaml"
)

// Promotion is the content of a PROMOTE marker, written by `gitpace promote`:
//
//	rollout: web-7f9c4   # the rollout (new application name) it approves
//	cycles: 2            # how many manual cycles it approves
type Promotion struct {
	Rollout string `json:"rollout"`
	Cycles  int    `json:"cycles"`
}

// ParsePromotion decodes and validates a PROMOTE file. Unknown fields are
// errors, so a typo does not silently approve nothing.
// The file is decoded as package textenc says, and must hold one YAML
// document.
func ParsePromotion(data []byte) (Promotion, error) {
	var p Promotion
	data, err := textenc.ReadYAML(data)
	if err != nil {
		return Promotion{}, fmt.Errorf("%s: %w", PromoteFile, err)
	}
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return Promotion{}, fmt.Errorf("%s: %w", PromoteFile, textenc.TypeError(err))
	}
	if err := p.Validate(); err != nil {
		return Promotion{}, err
	}
	return p, nil
}

// Validate checks that the promotion names a rollout and a cycle count >= 1.
func (p Promotion) Validate() error {
	if p.Rollout == "" {
		return errors.New(PromoteFile + ": rollout is required")
	}
	if p.Cycles < 1 {
		return fmt.Errorf("%s: cycles must be at least 1, got %d", PromoteFile, p.Cycles)
	}
	return nil
}

// Marshal encodes the promotion as the PROMOTE file's YAML.
func (p Promotion) Marshal() []byte {
	b, err := yaml.Marshal(p)
	if err != nil { // a struct of a string and an int always encodes
		panic(err)
	}
	return b
}

// WavePromotions is the content of the PROMOTE-WAVES marker:
//
//	waves:
//	- wave: 3               # the wave (1-based, as gitpace.yaml lists them)
//	  rollout: w3-5f2c9a1b  # the wave's rollout it approves (gitpace status)
//
// An entry approves one rollout of one manual wave: a later commit that
// changes an app of the wave makes a new rollout, which needs a new
// approval, as a PROMOTE naming another rollout releases nothing.
type WavePromotions struct {
	Waves []WavePromotion `json:"waves"`
}

// WavePromotion approves one rollout of one manual wave.
type WavePromotion struct {
	Wave    int    `json:"wave"`
	Rollout string `json:"rollout"`
}

// Approves reports whether p approves rollout of wave (1-based).
func (p WavePromotions) Approves(wave int, rollout string) bool {
	for _, w := range p.Waves {
		if w.Wave == wave && w.Rollout == rollout {
			return true
		}
	}
	return false
}

// ParseWavePromotions decodes and validates a PROMOTE-WAVES file strictly
// (an unknown field is an error), as ParsePromotion does.
func ParseWavePromotions(data []byte) (WavePromotions, error) {
	var p WavePromotions
	data, err := textenc.ReadYAML(data)
	if err != nil {
		return WavePromotions{}, fmt.Errorf("%s: %w", WavePromoteFile, err)
	}
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return WavePromotions{}, fmt.Errorf("%s: %w", WavePromoteFile, textenc.TypeError(err))
	}
	for i, w := range p.Waves {
		if w.Wave < 1 {
			return WavePromotions{}, fmt.Errorf("%s: waves[%d].wave: must be at least 1, got %d", WavePromoteFile, i, w.Wave)
		}
		if w.Rollout == "" {
			return WavePromotions{}, fmt.Errorf("%s: waves[%d].rollout: required", WavePromoteFile, i)
		}
	}
	return p, nil
}
