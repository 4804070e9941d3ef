module github.com/izdrop/izdrop

go 1.26.8

require (
	github.com/robfig/cron/v3 v3.0.1
	golang.org/x/text v0.44.0
)

require github.com/pelletier/go-toml/v2 v2.4.3
