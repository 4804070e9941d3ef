//go:build windows && wine

package watcher

import _ "github.com/izdrop/izdrop/internal/winetest" // the Windows tests run under Wine in CI
