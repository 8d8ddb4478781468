package impair

import (
	"errors"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

func TestParseGood(t *testing.T) {
	for _, tc := range []struct {
		in, canon string
		want      Config
	}{
		{"off", "off", Config{}},
		{"  OFF \n", "off", Config{}},
		{"loss 1%", "loss 1%", Config{Loss: 0.01}},
		{"loss 0.1%", "loss 0.1%", Config{Loss: 0.001}},
		{"loss 100%", "loss 100%", Config{Loss: 1}},
		{"loss 0%", "off", Config{}},
		{"loss 2.5", "loss 2.5%", Config{Loss: 0.025}},
		{"delay 50ms", "delay 50ms", Config{Delay: 50 * time.Millisecond}},
		{"delay 50ms 5ms", "delay 50ms 5ms", Config{Delay: 50 * time.Millisecond, Jitter: 5 * time.Millisecond}},
		{"delay 1.5s", "delay 1500ms", Config{Delay: 1500 * time.Millisecond}},
		{"delay 100us", "delay 100us", Config{Delay: 100 * time.Microsecond}},
		{"delay 100µs", "delay 100us", Config{Delay: 100 * time.Microsecond}},
		{"delay 250ns", "delay 250ns", Config{Delay: 250}},
		{"delay 2s", "delay 2s", Config{Delay: 2 * time.Second}},
		{"delay 0s 5ms", "delay 0s 5ms", Config{Jitter: 5 * time.Millisecond}},
		{"reorder 2%", "reorder 2%", Config{Reorder: 0.02}},
		{"duplicate 1%", "duplicate 1%", Config{Duplicate: 0.01}},
		{"corrupt 0.1%", "corrupt 0.1%", Config{Corrupt: 0.001}},
		{"rate 100mbit", "rate 100mbit", Config{Rate: 100e6}},
		{"rate 1.5mbit", "rate 1500kbit", Config{Rate: 1500e3}},
		{"rate 10Gbit", "rate 10gbit", Config{Rate: 10e9}},
		{"rate 64kbit", "rate 64kbit", Config{Rate: 64e3}},
		{"rate 9600bit", "rate 9600bit", Config{Rate: 9600}},
		{"rate 1mbps", "rate 8mbit", Config{Rate: 8e6}},
		{"rate 125kbps", "rate 1mbit", Config{Rate: 1e6}},
		{"rate 3bps", "rate 24bit", Config{Rate: 24}},
		{"limit 500", "limit 500", Config{Limit: 500}},
		{"delay 50ms loss 1%", "delay 50ms loss 1%", Config{Delay: 50 * time.Millisecond, Loss: 0.01}},
		{"loss 1% delay 50ms", "delay 50ms loss 1%", Config{Delay: 50 * time.Millisecond, Loss: 0.01}},
		{"LOSS 1% Delay 10MS", "delay 10ms loss 1%", Config{Delay: 10 * time.Millisecond, Loss: 0.01}},
		{
			"limit 50 rate 1gbit corrupt 0.01% duplicate 0.5% reorder 25% loss 3% delay 20ms 2ms",
			"delay 20ms 2ms loss 3% reorder 25% duplicate 0.5% corrupt 0.01% rate 1gbit limit 50",
			Config{Delay: 20 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 0.03, Reorder: 0.25,
				Duplicate: 0.005, Corrupt: 0.0001, Rate: 1e9, Limit: 50},
		},
	} {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if s := got.String(); s != tc.canon {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, s, tc.canon)
		}
		back, err := Parse(got.String())
		if err != nil || back != got {
			t.Errorf("round trip of %q: %+v, %v", got.String(), back, err)
		}
	}
}

func TestParseBad(t *testing.T) {
	for _, in := range []string{
		"",
		"   ",
		"loss",
		"loss 120%",
		"loss -1%",
		"loss abc",
		"loss 1%%",
		"loss NaN",
		"loss 1e1%",
		"delay",
		"delay 50",
		"delay -5ms",
		"delay fast",
		"delay 2h",
		"delay 50ms 5ms 25%",
		"delay 10ms delay 20ms",
		"rate",
		"rate 100",
		"rate 100furlongs",
		"rate 0mbit",
		"rate -1mbit",
		"rate 0.1bit",
		"rate 100000000tbit",
		"limit 0",
		"limit -3",
		"limit 1.5",
		"off loss 1%",
		"loss 1% off",
		"jitter 5ms",
		"bogus",
		"loss 1% 2%",
		"duplicate 101%",
		"corrupt x",
		"reorder",
	} {
		c, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", in, c)
			continue
		}
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Parse(%q): %v does not wrap EINVAL", in, err)
		}
	}
	_, err := Parse("loss 120%")
	if got, want := err.Error(), "impair: loss 120%: out of range: invalid argument"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}

// TestStringRoundTripRandom checks that String is accepted back by Parse to
// the identical Config for arbitrary valid values, not only tidy ones.
func TestStringRoundTripRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	p := func() float64 {
		if rng.IntN(3) == 0 {
			return 0
		}
		return rng.Float64()
	}
	for range 20000 {
		c := Config{
			Loss: p(), Reorder: p(), Duplicate: p(), Corrupt: p(),
			Delay:  time.Duration(rng.Int64N(int64(maxDelay))),
			Jitter: time.Duration(rng.Int64N(int64(time.Second))),
			Rate:   rng.Uint64N(1 << 50),
			Limit:  rng.IntN(100000),
		}
		back, err := Parse(c.String())
		if err != nil || back != c {
			t.Fatalf("%#v -> %q -> %#v, %v", c, c.String(), back, err)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{
		{Loss: 1.5}, {Loss: -0.1}, {Corrupt: 2}, {Delay: -1}, {Jitter: -1}, {Limit: -1}, {Delay: 2 * time.Hour},
	} {
		if err := c.Validate(); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Validate(%+v) = %v", c, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"off", "delay 50ms 5ms loss 1%", "rate 1.5mbps limit 10", "corrupt 0.1%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			if !errors.Is(err, syscall.EINVAL) {
				t.Fatalf("Parse(%q): %v not EINVAL", s, err)
			}
			return
		}
		back, err := Parse(c.String())
		if err != nil || back != c {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, c, c.String(), back, err)
		}
	})
}
