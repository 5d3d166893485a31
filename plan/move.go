package plan

import (
	"fmt"
	"slices"
	"strings"
)

// Move is a jail whose host changed in the topology (same name): one action
// of the plan, whose steps run on two machines. The old host still lists the
// jail in its manifest while the topology puts it on the new one.
type Move struct {
	Jail string `json:"jail"`
	From string `json:"from"`
	To   string `json:"to"`
	// Data: the jail is in a data tier, or was once (the old host's
	// manifest flag is sticky).
	Data  bool     `json:"data,omitempty"`
	Steps []string `json:"steps"`
	// Refused says why arbo will not move it (then neither machine is
	// touched).
	Refused string `json:"refused,omitempty"`
}

// LinkMoves finds the moves in a plan whose machines were diffed one by one:
// a jail archived on one host (it left that host's part of the topology but
// runs there, in its manifest) and created, enabled or adopted on another.
// It marks both sides' actions as one move, keeps the old copy (archived and
// retired, never destroyed without --allow-destroy), and refuses the move of
// a jail that ever held data unless --allow-empty is given: arbo does not
// carry a jail's data yet, so the new jail would start empty under the old
// name, address and Erlang node. A refusal, or a machine refused for another
// reason, stops both sides: the old copy never keeps running beside a new
// one, and a data jail is never stopped for a move that cannot happen.
// Apply then stops and retires every old copy before any new one starts.
func LinkMoves(p *Plan) {
	p.Moves = nil
	type arrival struct{ machine int }
	arrivals := map[string]arrival{}
	for mi := range p.Machines {
		for _, a := range p.Machines[mi].Actions {
			if arrives(a) {
				arrivals[a.Jail] = arrival{mi}
			}
		}
	}
	type departure struct {
		machine int
		jail    string
	}
	var deps []departure
	for si, m := range p.Machines {
		for _, a := range m.Actions {
			if arr, ok := arrivals[a.Jail]; ok && a.Op == OpArchive && a.Kind == KindJail && arr.machine != si {
				deps = append(deps, departure{si, a.Jail})
			}
		}
	}
	refuse := map[int][]string{}
	for _, dep := range deps {
		si := dep.machine
		src := &p.Machines[si]
		a := archiveOf(src, dep.jail)
		arr := arrivals[dep.jail]
		dst := &p.Machines[arr.machine]
		in := arrivalOf(dst, dep.jail)
		mv := Move{Jail: a.Jail, From: src.Name, To: dst.Name, Data: a.Data}
		for _, j := range dst.Jails {
			if j.Name == a.Jail && j.Data {
				mv.Data = true
			}
		}
		a.MoveTo, in.MoveFrom = dst.Name, src.Name
		keep := !p.Options.AllowDestroy
		if keep {
			// The old copy is kept, archived and retired, whatever its tier.
			src.Actions = slices.DeleteFunc(src.Actions, func(d Action) bool {
				return d.Op == OpDestroy && d.Kind == KindJail && d.Jail == a.Jail
			})
			a = archiveOf(src, mv.Jail)
		}
		old := "stop it, archive it (ezjail-admin archive), retire it (ezjail-admin config -r norun): the old copy stays on " + src.Name + " until apply --allow-destroy"
		if !keep {
			old = "stop it, archive it (ezjail-admin archive), then delete it (--allow-destroy)"
		}
		a.Reason = "moved to " + dst.Name + ": " + old + "; before " + dst.Name + " starts the new one"
		in.Reason = "moved from " + src.Name + ", started only after the old copy stopped there: " + in.Reason
		mv.Steps = []string{
			src.Name + ": " + old,
			dst.Name + ": " + in.Op + " jail " + mv.Jail + ", then start it (only once the old copy is stopped: its address is never up on two hosts)",
			"every host's routes, pf tables, DNS and the gateway follow the topology in the same apply; routes to the old place are deleted after the new ones are added",
		}
		if mv.Data {
			mv.Steps[1] += "; its data does not travel (not built yet): the new jail starts empty"
		}
		if mv.Data && !p.Options.AllowEmpty {
			mv.Refused = fmt.Sprintf("jail %s moves from %s to %s and has held data: arbo does not carry a jail's data yet (zfs send or an archive transfer is not built), so %s would start an empty data jail under the old name, address and Erlang node. Put it back on %s in the topology, or move its data yourself and give --allow-empty to start it empty on %s (the old copy stays archived and retired on %s)",
				mv.Jail, src.Name, dst.Name, dst.Name, src.Name, dst.Name, src.Name)
			refuse[si] = append(refuse[si], mv.Refused)
			refuse[arr.machine] = append(refuse[arr.machine], mv.Refused)
		}
		for _, pair := range [][2]*MachinePlan{{src, dst}, {dst, src}} {
			if pair[1].Error != "" && !slices.ContainsFunc(pair[1].Actions, func(c Action) bool { return c.Op == OpConflict && c.Reason == mv.Refused }) {
				why := fmt.Sprintf("jail %s moves from %s to %s, and %s is refused (see there): nothing is done here either, so that the jail never runs on both or on neither", mv.Jail, src.Name, dst.Name, pair[1].Name)
				refuse[machineIndex(p, pair[0].Name)] = append(refuse[machineIndex(p, pair[0].Name)], why)
			}
		}
		p.Moves = append(p.Moves, mv)
	}
	for mi, whys := range refuse {
		m := &p.Machines[mi]
		for _, w := range whys {
			m.Actions = append(m.Actions, Action{Op: OpConflict, Kind: KindJail, Target: m.Name, Reason: w})
		}
		if m.Error != "" {
			whys = append([]string{m.Error}, whys...)
		}
		m.Error = strings.Join(whys, "; ")
	}
}

func arrives(a Action) bool {
	return a.Kind == KindJail && (a.Op == OpCreate || a.Op == OpEnable || a.Op == OpAdopt)
}

func arrivalOf(m *MachinePlan, jail string) *Action {
	for i := range m.Actions {
		if arrives(m.Actions[i]) && m.Actions[i].Jail == jail {
			return &m.Actions[i]
		}
	}
	return nil
}

func archiveOf(m *MachinePlan, jail string) *Action {
	for i := range m.Actions {
		if m.Actions[i].Op == OpArchive && m.Actions[i].Kind == KindJail && m.Actions[i].Jail == jail {
			return &m.Actions[i]
		}
	}
	return nil
}

func machineIndex(p *Plan, name string) int {
	for i := range p.Machines {
		if p.Machines[i].Name == name {
			return i
		}
	}
	return -1
}
