package main

// The parts of Argo CD's util/lua that run a resource customization, mirrored
// from github.com/argoproj/argo-cd/v3 v3.5.7, util/lua/lua.go (Apache License
// 2.0, Copyright The Argo Authors): runLuaWithResourceActionParameters,
// ExecuteHealthLua, ExecuteResourceAction, cleanReturnedObj,
// cleanReturnedArray, ExecuteResourceActionDiscovery, isActionDisabled,
// emptyResourceActionFromLua, noAvailableActions, isValidHealthStatusCode and
// decodeValue, with the same gopher-lua and gopher-json versions (go.mod).
// Argo CD's own package cannot be imported from the module proxy: its module
// takes gitops-engine from a directory of its repository, which no published
// module version matches. What is left out is what does not run Lua: the lookup
// of built-in scripts and Argo CD's protobuf and Kubernetes types, here plain
// maps and structs with the same JSON names.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	luajson "layeh.com/gopher-json"
	"sigs.k8s.io/yaml"
)

const (
	incorrectReturnType = "expect %s output from Lua script, not %s"
	invalidHealthStatus = "Lua returned an invalid health status"
)

// HealthStatus is gitops-engine's health.HealthStatus.
type HealthStatus struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
}

// ResourceActionParam, ResourceAction, ResourceActionDefinition and
// ResourceActions are the v1alpha1 types of the same names.
type ResourceActionParam struct {
	Name string `json:"name,omitempty"`
}

type ResourceAction struct {
	Name        string                `json:"name,omitempty"`
	Params      []ResourceActionParam `json:"params,omitempty"`
	Disabled    bool                  `json:"disabled,omitempty"`
	IconClass   string                `json:"iconClass,omitempty"`
	DisplayName string                `json:"displayName,omitempty"`
}

type ResourceActionDefinition struct {
	Name      string `json:"name"`
	ActionLua string `json:"action.lua" yaml:"action.lua"`
}

type ResourceActions struct {
	ActionDiscoveryLua  string                     `json:"discovery.lua,omitempty" yaml:"discovery.lua,omitempty"`
	Definitions         []ResourceActionDefinition `json:"definitions,omitempty"`
	MergeBuiltinActions bool                       `json:"mergeBuiltinActions,omitempty" yaml:"mergeBuiltinActions,omitempty"`
}

// ResourceOverride holds the Lua parts of v1alpha1.ResourceOverride.
type ResourceOverride struct {
	HealthLua   string
	UseOpenLibs bool
	Actions     string
}

// GetActions is v1alpha1's ResourceOverride.GetActions.
func (ro *ResourceOverride) GetActions() (ResourceActions, error) {
	var actions ResourceActions
	err := yaml.Unmarshal([]byte(ro.Actions), &actions)
	return actions, err
}

// ResourceActionParameter is the API's ResourceActionParameters (name, value).
type ResourceActionParameter struct {
	Name  string
	Value string
}

// ImpactedResource is util/lua's: an action's result, one resource and what to do with it.
type ImpactedResource struct {
	Object    map[string]any `json:"resource"`
	Operation string         `json:"operation"`
}

// VM is util/lua's VM.
type VM struct {
	// UseOpenLibs opens all of gopher-lua's libraries (argocd-cm's resource.customizations.useOpenLibs.*).
	UseOpenLibs bool
}

func (vm VM) runLua(obj map[string]any, script string, resourceActionParameters []ResourceActionParameter) (*lua.LState, error) {
	l := lua.NewState(lua.Options{
		SkipOpenLibs: !vm.UseOpenLibs,
	})
	defer l.Close()
	// Opens table library to allow access to functions to manipulate tables
	for _, pair := range []struct {
		n string
		f lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		// load our 'safe' version of the OS library
		{lua.OsLibName, OpenSafeOs},
	} {
		if err := l.CallByParam(lua.P{
			Fn:      l.NewFunction(pair.f),
			NRet:    0,
			Protect: true,
		}, lua.LString(pair.n)); err != nil {
			panic(err)
		}
	}
	// preload our 'safe' version of the OS library. Allows the 'local os = require("os")' to work
	l.PreloadModule(lua.OsLibName, SafeOsLoader)

	ctx, cancel := context.WithTimeout(context.Background(), 1*time.Second)
	defer cancel()
	l.SetContext(ctx)

	// Inject action parameters as a hash table global variable
	actionParams := l.CreateTable(0, len(resourceActionParameters))
	for _, resourceActionParameter := range resourceActionParameters {
		value := decodeValue(l, resourceActionParameter.Value)
		actionParams.RawSetH(lua.LString(resourceActionParameter.Name), value)
	}
	l.SetGlobal("actionParams", actionParams) // Set the actionParams table as a global variable

	objectValue := decodeValue(l, obj)
	l.SetGlobal("obj", objectValue)
	err := l.DoString(script)

	// Remove the default lua stack trace from execution errors since these
	// errors will make it back to the user
	var apiErr *lua.ApiError
	if errors.As(err, &apiErr) {
		if apiErr.Type == lua.ApiErrorRun {
			apiErr.StackTrace = ""
			err = apiErr
		}
	}
	return l, err
}

// ExecuteHealthLua runs the lua script to generate the health status of a resource
func (vm VM) ExecuteHealthLua(obj map[string]any, script string) (*HealthStatus, error) {
	l, err := vm.runLua(obj, script, nil)
	if err != nil {
		return nil, err
	}
	returnValue := l.Get(-1)
	if returnValue.Type() == lua.LTTable {
		jsonBytes, err := luajson.Encode(returnValue)
		if err != nil {
			return nil, err
		}
		healthStatus := &HealthStatus{}
		err = json.Unmarshal(jsonBytes, healthStatus)
		if err != nil {
			// Validate if the error is caused by an empty object
			// (Argo CD's errors.As matches any *json.UnmarshalTypeError.)
			var typeError *json.UnmarshalTypeError
			if errors.As(err, &typeError) {
				return &HealthStatus{}, nil
			}
			return nil, err
		}
		if !isValidHealthStatusCode(healthStatus.Status) {
			return &HealthStatus{
				Status:  "Unknown",
				Message: invalidHealthStatus,
			}, nil
		}
		return healthStatus, nil
	} else if returnValue.Type() == lua.LTNil {
		return &HealthStatus{}, nil
	}
	return nil, fmt.Errorf(incorrectReturnType, "table", returnValue.Type().String())
}

// ExecuteResourceAction runs an action; an old-style action's object becomes one "patch".
func (vm VM) ExecuteResourceAction(obj map[string]any, script string, resourceActionParameters []ResourceActionParameter) ([]ImpactedResource, error) {
	l, err := vm.runLua(obj, script, resourceActionParameters)
	if err != nil {
		return nil, err
	}
	returnValue := l.Get(-1)
	if returnValue.Type() == lua.LTTable {
		jsonBytes, err := luajson.Encode(returnValue)
		if err != nil {
			return nil, err
		}

		var impactedResources []ImpactedResource

		jsonString := bytes.NewBuffer(jsonBytes).String()
		if len(jsonString) < 2 {
			return nil, errors.New("Lua output was not a valid json object or array")
		}
		// The output from Lua is either an object (old-style action output) or an array (new-style action output).
		if jsonString[0] == '[' && jsonString[len(jsonString)-1] == ']' {
			impactedResources, err = unmarshalToImpactedResources(jsonBytes)
			if err != nil {
				return nil, err
			}
		} else {
			newObj, err := decodeObject(jsonBytes)
			if err != nil {
				return nil, err
			}
			impactedResources = append(impactedResources, ImpactedResource{newObj, "patch"})
		}

		for _, impactedResource := range impactedResources {
			// Cleaning the resource is only relevant to "patch"
			if impactedResource.Operation == "patch" {
				cleanReturnedObj(impactedResource.Object, obj)
			}
		}
		return impactedResources, nil
	}
	return nil, fmt.Errorf(incorrectReturnType, "table", returnValue.Type().String())
}

func unmarshalToImpactedResources(resources []byte) ([]ImpactedResource, error) {
	var raw []struct {
		Resource  json.RawMessage `json:"resource"`
		Operation string          `json:"operation"`
	}
	if err := json.Unmarshal(resources, &raw); err != nil {
		return nil, err
	}
	impacted := make([]ImpactedResource, 0, len(raw))
	for _, entry := range raw {
		// K8SOperation.UnmarshalJSON accepts only these two.
		if entry.Operation != "create" && entry.Operation != "patch" {
			return nil, fmt.Errorf("unsupported operation: %q", entry.Operation)
		}
		object, err := decodeObject(entry.Resource)
		if err != nil {
			return nil, err
		}
		impacted = append(impacted, ImpactedResource{object, entry.Operation})
	}
	return impacted, nil
}

// cleanReturnedObj Lua cannot distinguish an empty table as an array or map, and the library we are using choose to
// decoded an empty table into an empty array. This function prevents the lua scripts from unintentionally changing an
// empty struct into empty arrays
func cleanReturnedObj(newObj, obj map[string]any) map[string]any {
	mapToReturn := newObj
	for key := range obj {
		if newValueInterface, ok := newObj[key]; ok {
			oldValueInterface, ok := obj[key]
			if !ok {
				continue
			}
			switch newValue := newValueInterface.(type) {
			case map[string]any:
				if oldValue, ok := oldValueInterface.(map[string]any); ok {
					convertedMap := cleanReturnedObj(newValue, oldValue)
					mapToReturn[key] = convertedMap
				}

			case []any:
				switch oldValue := oldValueInterface.(type) {
				case map[string]any:
					if len(newValue) == 0 {
						// Lua incorrectly decoded the empty object as an empty array, so set it to an empty object
						mapToReturn[key] = map[string]any{}
					}
				case []any:
					newArray := cleanReturnedArray(newValue, oldValue)
					mapToReturn[key] = newArray
				}
			}
		}
	}
	return mapToReturn
}

// cleanReturnedArray allows Argo CD to recurse into nested arrays when checking for unintentional empty struct to
// empty array conversions.
func cleanReturnedArray(newObj, obj []any) []any {
	arrayToReturn := newObj
	for i := range newObj {
		if i >= len(obj) {
			// If the new object is longer than the old one, we added an item to the array
			break
		}
		switch newValue := newObj[i].(type) {
		case map[string]any:
			if oldValue, ok := obj[i].(map[string]any); ok {
				convertedMap := cleanReturnedObj(newValue, oldValue)
				arrayToReturn[i] = convertedMap
			}
		case []any:
			if oldValue, ok := obj[i].([]any); ok {
				convertedMap := cleanReturnedArray(newValue, oldValue)
				arrayToReturn[i] = convertedMap
			}
		}
	}
	return arrayToReturn
}

// ExecuteResourceActionDiscovery runs the discovery scripts; the first to name an action wins.
func (vm VM) ExecuteResourceActionDiscovery(obj map[string]any, scripts []string) ([]ResourceAction, error) {
	if len(scripts) == 0 {
		return nil, errors.New("no action discovery script provided")
	}
	availableActionsMap := make(map[string]ResourceAction)

	for _, script := range scripts {
		l, err := vm.runLua(obj, script, nil)
		if err != nil {
			return nil, err
		}
		returnValue := l.Get(-1)
		if returnValue.Type() != lua.LTTable {
			return nil, fmt.Errorf(incorrectReturnType, "table", returnValue.Type().String())
		}
		jsonBytes, err := luajson.Encode(returnValue)
		if err != nil {
			return nil, fmt.Errorf("error in converting to lua table: %w", err)
		}
		if noAvailableActions(jsonBytes) {
			continue
		}
		actionsMap := make(map[string]any)
		err = json.Unmarshal(jsonBytes, &actionsMap)
		if err != nil {
			return nil, fmt.Errorf("error unmarshaling action table: %w", err)
		}
		for key, value := range actionsMap {
			resourceAction := ResourceAction{Name: key, Disabled: isActionDisabled(value)}
			if _, exist := availableActionsMap[key]; exist {
				continue
			}
			if emptyResourceActionFromLua(value) {
				availableActionsMap[key] = resourceAction
				continue
			}
			resourceActionBytes, err := json.Marshal(value)
			if err != nil {
				return nil, fmt.Errorf("error marshaling resource action: %w", err)
			}

			err = json.Unmarshal(resourceActionBytes, &resourceAction)
			if err != nil {
				return nil, fmt.Errorf("error unmarshaling resource action: %w", err)
			}
			availableActionsMap[key] = resourceAction
		}
	}

	availableActions := make([]ResourceAction, 0, len(availableActionsMap))
	for _, action := range availableActionsMap {
		availableActions = append(availableActions, action)
	}

	return availableActions, nil
}

// Actions are enabled by default
func isActionDisabled(actionsMap any) bool {
	actions, ok := actionsMap.(map[string]any)
	if !ok {
		return false
	}
	for key, val := range actions {
		if vv, ok := val.(bool); ok {
			if key == "disabled" {
				return vv
			}
		}
	}
	return false
}

func emptyResourceActionFromLua(i any) bool {
	_, ok := i.([]any)
	return ok
}

func noAvailableActions(jsonBytes []byte) bool {
	// When the Lua script returns an empty table, it is decoded as a empty array.
	return string(jsonBytes) == "[]"
}

func isValidHealthStatusCode(statusCode string) bool {
	switch statusCode {
	case "Unknown", "Progressing", "Suspended", "Healthy", "Degraded", "Missing":
		return true
	}
	return false
}

// Took logic from the link below and added the int, int32, and int64 types since the value would have type int64
// while actually running in the controller and it was not reproducible through testing.
// https://github.com/layeh/gopher-json/blob/97fed8db84274c421dbfffbb28ec859901556b97/json.go#L154
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch converted := value.(type) {
	case bool:
		return lua.LBool(converted)
	case float64:
		return lua.LNumber(converted)
	case string:
		return lua.LString(converted)
	case json.Number:
		return lua.LString(converted)
	case int:
		return lua.LNumber(converted)
	case int32:
		return lua.LNumber(converted)
	case int64:
		return lua.LNumber(converted)
	case []any:
		arr := l.CreateTable(len(converted), 0)
		for _, item := range converted {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(converted))
		for key, item := range converted {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	case nil:
		return lua.LNil
	}

	return lua.LNil
}

// decodeObject is v1alpha1.UnmarshalToUnstructured, and how the API server's JSON
// becomes the object a script sees: whole numbers as int64, a kind required.
func decodeObject(document []byte) (map[string]any, error) {
	obj := &unstructured.Unstructured{}
	if err := json.Unmarshal(document, obj); err != nil {
		return nil, err
	}
	return obj.Object, nil
}
