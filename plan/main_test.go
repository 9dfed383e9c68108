package plan_test

import (
	"testing"

	"github.com/gitpace/gitpace/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
