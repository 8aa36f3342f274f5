// Package pluginharness builds a Traefik middleware plugin the way Traefik does, either from
// its compiled functions or through a Yaegi interpreter, so one test table can check that the
// plugin behaves the same both ways.
//
// Traefik v3.6.12 (pkg/plugins/middlewareyaegi.go) builds a middleware in three steps:
// CreateConfig(), a mapstructure decode of the dynamic configuration into the returned value
// (skipped when the configuration is empty), then New(ctx, next, config, name). Builder.New
// repeats exactly these steps, through reflect, for both kinds of Builder.
package pluginharness

import (
	"context"
	"fmt"
	"net/http"
	"reflect"

	"github.com/mitchellh/mapstructure"
)

// Builder builds middlewares of one plugin, compiled or interpreted.
type Builder struct {
	// Name is "compiled" or "yaegi", to be used as a subtest name.
	Name string

	createConfig reflect.Value
	newFn        reflect.Value
}

// Compiled returns a Builder that calls the plugin's compiled CreateConfig and New (e.g.
// jwtauth.CreateConfig, jwtauth.New) through reflect, as Traefik calls the interpreted ones.
func Compiled(createConfig, newFn any) Builder {
	return Builder{
		Name:         "compiled",
		createConfig: reflect.ValueOf(createConfig),
		newFn:        reflect.ValueOf(newFn),
	}
}

// New builds a middleware named name in front of next from cfg, a configuration as Traefik's
// file provider hands it over: every scalar a string, lists []any, nested maps map[string]any.
//
// Errors from decoding and from the plugin's New are returned, not reported to a test.
func (b Builder) New(ctx context.Context, next http.Handler, cfg map[string]any, name string) (http.Handler, error) {
	if err := checkFunc(b.createConfig, "CreateConfig"); err != nil {
		return nil, err
	}
	if err := checkFunc(b.newFn, "New"); err != nil {
		return nil, err
	}

	vConfig, err := b.config(cfg)
	if err != nil {
		return nil, err
	}

	return b.handler(ctx, next, vConfig, name)
}

// config mirrors yaegiMiddlewareBuilder.createConfig.
func (b Builder) config(cfg map[string]any) (reflect.Value, error) {
	if t := b.createConfig.Type(); t.NumIn() != 0 {
		return reflect.Value{}, fmt.Errorf("CreateConfig takes %d arguments, want none", t.NumIn())
	}

	results := b.createConfig.Call(nil)
	if len(results) != 1 {
		return reflect.Value{}, fmt.Errorf("invalid number of return for the CreateConfig function: %d", len(results))
	}

	vConfig := results[0]
	if len(cfg) == 0 {
		return vConfig, nil
	}

	decoder, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       mapstructure.StringToSliceHookFunc(","),
		WeaklyTypedInput: true,
		Result:           vConfig.Interface(),
	})
	if err != nil {
		return reflect.Value{}, fmt.Errorf("failed to create configuration decoder: %w", err)
	}

	if err := decoder.Decode(cfg); err != nil {
		return reflect.Value{}, fmt.Errorf("failed to decode configuration: %w", err)
	}

	return vConfig, nil
}

// handler mirrors yaegiMiddlewareBuilder.newHandler.
func (b Builder) handler(ctx context.Context, next http.Handler, vConfig reflect.Value, name string) (http.Handler, error) {
	if t := b.newFn.Type(); t.NumIn() != 4 {
		return nil, fmt.Errorf("New takes %d arguments, want 4 (ctx, next, config, name)", t.NumIn())
	}

	args := []reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(next), vConfig, reflect.ValueOf(name)}
	results := b.newFn.Call(args)

	if len(results) > 1 && results[1].Interface() != nil {
		err, ok := results[1].Interface().(error)
		if !ok {
			return nil, fmt.Errorf("invalid error type: %T", results[0].Interface())
		}

		return nil, err
	}

	handler, ok := results[0].Interface().(http.Handler)
	if !ok {
		return nil, fmt.Errorf("invalid handler type: %T", results[0].Interface())
	}

	return handler, nil
}

func checkFunc(v reflect.Value, name string) error {
	if !v.IsValid() || v.Kind() != reflect.Func || v.IsNil() {
		return fmt.Errorf("pluginharness: %s is not a function (got %v)", name, v)
	}
	return nil
}
