//go:build tools

// Package tools pins the Consul build; see go.mod.
package tools

import _ "github.com/hashicorp/consul"
