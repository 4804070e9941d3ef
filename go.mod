module github.com/izdrop/izdrop

go 1.26.8

require (
	github.com/robfig/cron/v3 v3.0.1
	golang.org/x/text v0.44.0
)

require (
	github.com/pelletier/go-toml/v2 v2.4.3
	github.com/rs/zerolog v1.35.1
	golang.org/x/term v0.48.0
	golang.org/x/time v0.16.0
)

require (
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
