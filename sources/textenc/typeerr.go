package textenc

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// TypeError rewrites a JSON type mismatch of a decoded YAML file (what
// sigs.k8s.io/yaml and sigs.k8s.io/json return: "json: cannot unmarshal
// number into Go struct field Wave.waves.interval of type string") in the
// file's own words: "waves.interval: want a string, got a number". Other
// errors are returned as they are.
func TypeError(err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field == "" {
		return err
	}
	got := te.Value
	switch got {
	case "number", "string", "array", "object", "bool":
		got = map[string]string{"number": "a number", "string": "a string", "array": "a list", "object": "a mapping", "bool": "true or false"}[got]
	}
	return fmt.Errorf("%s: want %s, got %s", te.Field, typeWord(te.Type), got)
}

func typeWord(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "a mapping"
	}
	return t.String()
}
