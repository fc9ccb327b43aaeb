// argocd-lua runs modeldeploy's Argo CD health check and resource actions the
// way Argo CD does: gopher-lua (Lua 5.1) at the version Argo CD v3.5.7 pins, with
// only the package, base and table libraries and Argo CD's "safe" os, the live
// object as the global `obj`, action parameters as the global `actionParams`, a
// one-second limit, and Argo CD's reading of the result. vm.go and
// oslib_safe.go mirror util/lua of github.com/argoproj/argo-cd/v3 v3.5.7 (see
// there for why it is mirrored rather than imported); go.mod pins the same
// gopher-lua, gopher-json and apimachinery versions.
//
// The scripts are read from an argocd-cm ConfigMap (argocd/argocd-cm-patch.yaml)
// as Argo CD reads its keys resource.customizations.{health,actions,useOpenLibs}.<group>_<kind>,
// or from a bare script file (--script). The object is YAML or JSON, from a file
// or "-" for standard input. The result is JSON on standard output:
//
//	argocd-lua health   (--argocd-cm FILE | --script FILE) OBJECT
//	    {"status": "...", "message": "..."}
//	argocd-lua discover --argocd-cm FILE OBJECT
//	    [{"name": "...", "disabled": bool, "displayName": ..., "iconClass": ..., "params": [...]}, ...] by name
//	argocd-lua action   (--argocd-cm FILE --action NAME | --script FILE) [--param NAME=VALUE ...] OBJECT
//	    [{"operation": "patch"|"create", "resource": {...}}, ...]
//
// A script that fails (error(), a runtime error, the time limit, a wrong return
// type) exits with status 1 and Argo CD's error message on standard error.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// ArgoCDVersion is the Argo CD release whose util/lua this binary mirrors.
const ArgoCDVersion = "v3.5.7"

type params []ResourceActionParameter

func (p *params) String() string { return "" }

func (p *params) Set(value string) error {
	name, val, ok := strings.Cut(value, "=")
	if !ok || name == "" {
		return fmt.Errorf("--param %q: expected NAME=VALUE", value)
	}
	*p = append(*p, ResourceActionParameter{Name: name, Value: val})
	return nil
}

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "--version" || os.Args[1] == "version") {
		fmt.Printf("argocd-lua (Argo CD %s util/lua, gopher-lua v1.1.2)\n", ArgoCDVersion)
		return
	}
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func usage() error {
	return errors.New("usage: argocd-lua health|discover|action [--argocd-cm FILE] [--script FILE] [--action NAME] [--param NAME=VALUE]... OBJECT")
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) < 1 {
		return usage()
	}
	mode := args[0]
	flags := flag.NewFlagSet("argocd-lua "+mode, flag.ContinueOnError)
	cm := flags.String("argocd-cm", "", "an argocd-cm ConfigMap (YAML) holding the resource customizations")
	script := flags.String("script", "", "a bare Lua script, instead of --argocd-cm")
	action := flags.String("action", "", "the action's name (action mode, with --argocd-cm)")
	var actionParams params
	flags.Var(&actionParams, "param", "an action parameter NAME=VALUE (repeatable)")
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	if flags.NArg() != 1 || (*cm == "") == (*script == "") {
		return usage()
	}
	obj, err := readObject(flags.Arg(0), stdin)
	if err != nil {
		return err
	}
	overrides := map[string]ResourceOverride{}
	if *cm != "" {
		if overrides, err = readOverrides(*cm); err != nil {
			return err
		}
	}
	override, found := overrides[configMapKey(obj)]
	vm := VM{}
	var scriptText string
	if *script != "" {
		raw, err := os.ReadFile(*script)
		if err != nil {
			return err
		}
		scriptText = string(raw)
	} else if !found {
		return fmt.Errorf("%s has no resource customization for %s", *cm, configMapKey(obj))
	}

	var result any
	switch mode {
	case "health":
		if scriptText == "" {
			// GetResourceHealth: the override's script, with its useOpenLibs.
			if override.HealthLua == "" {
				return fmt.Errorf("%s has no health check for %s", *cm, configMapKey(obj))
			}
			scriptText, vm.UseOpenLibs = override.HealthLua, override.UseOpenLibs
		}
		result, err = vm.ExecuteHealthLua(obj, scriptText)
	case "discover":
		if scriptText == "" {
			// GetResourceActionDiscovery (no built-in scripts exist for this kind).
			actions, err := override.GetActions()
			if err != nil {
				return err
			}
			scriptText = actions.ActionDiscoveryLua
		}
		var actions []ResourceAction
		actions, err = vm.ExecuteResourceActionDiscovery(obj, []string{scriptText})
		sort.Slice(actions, func(i, j int) bool { return actions[i].Name < actions[j].Name })
		result = actions
	case "action":
		if scriptText == "" {
			// GetResourceAction: the definition of that name.
			if *action == "" {
				return errors.New("action mode with --argocd-cm needs --action NAME")
			}
			actions, err := override.GetActions()
			if err != nil {
				return err
			}
			for _, definition := range actions.Definitions {
				if definition.Name == *action {
					scriptText = definition.ActionLua
				}
			}
			if scriptText == "" {
				return fmt.Errorf("%s defines no action %q for %s", *cm, *action, configMapKey(obj))
			}
		}
		result, err = vm.ExecuteResourceAction(obj, scriptText, actionParams)
	default:
		return usage()
	}
	if err != nil {
		return err
	}
	encoder := json.NewEncoder(stdout)
	encoder.SetIndent("", "  ")
	return encoder.Encode(result)
}

// readObject decodes YAML or JSON the way the API server hands objects to Argo
// CD: JSON decoded into unstructured (whole numbers as int64).
func readObject(path string, stdin io.Reader) (map[string]any, error) {
	var raw []byte
	var err error
	if path == "-" {
		raw, err = io.ReadAll(stdin)
	} else {
		raw, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	document, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	obj, err := decodeObject(document)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return obj, nil
}

// configMapKey is util/lua's GetConfigMapKey: group/kind, or kind alone for the core group.
func configMapKey(obj map[string]any) string {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	group, _, found := strings.Cut(apiVersion, "/")
	if !found || group == "" {
		return kind
	}
	return group + "/" + kind
}

// readOverrides reads the resource customizations from an argocd-cm ConfigMap's
// data as Argo CD's settings manager does for the split keys
// resource.customizations.<type>.<group>_<kind> (appendResourceOverridesFromSplitKeys
// and convertToOverrideKey in util/settings/settings.go, v3.3.19).
func readOverrides(path string) (map[string]ResourceOverride, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var configMap struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(raw, &configMap); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	overrides := map[string]ResourceOverride{}
	for key, value := range configMap.Data {
		if !strings.HasPrefix(key, "resource.customizations") {
			continue
		}
		parts := strings.SplitN(key, ".", 4)
		if len(parts) < 4 {
			continue
		}
		groupKind := strings.Split(parts[3], "_")
		name := parts[3]
		switch {
		case len(groupKind) == 2:
			name = groupKind[0] + "/" + groupKind[1]
		case len(groupKind) == 1 && parts[3] != "":
		default:
			return nil, fmt.Errorf("%s: data key %q: group kind should be <group>_<kind> or <kind>", path, key)
		}
		if name == "all" {
			name = "*/*"
		}
		override := overrides[name]
		switch parts[2] {
		case "health":
			override.HealthLua = value
		case "actions":
			override.Actions = value
		case "useOpenLibs":
			useOpenLibs, err := strconv.ParseBool(value)
			if err != nil {
				return nil, fmt.Errorf("%s: data key %q: %w", path, key, err)
			}
			override.UseOpenLibs = useOpenLibs
		case "ignoreDifferences", "ignoreResourceUpdates", "knownTypeFields":
			continue // not Lua: nothing to run here
		default:
			return nil, fmt.Errorf("%s: data key %q: resource customization type %s not supported", path, key, parts[2])
		}
		overrides[name] = override
	}
	return overrides, nil
}
