//! Alarm rules evaluated against a device's live state, in memory, as each message is
//! ingested: no query per message. What a rule decides is an `Action` (raise or resolve);
//! the caller stores it.

use chrono::{DateTime, Timelike, Utc};
use uuid::Uuid;

use super::model::{AlarmRule, RuleKind, RuleOp};
use crate::iot::telemetry::model::{LiveState, MeterTrack};
use crate::kit::clock::BUSINESS_TZ;

/// What a rule decided about a device.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Raise { rule: Uuid, value: Option<f64>, detail: String },
    Resolve { rule: Uuid },
}

/// What one message says, as rules see it.
pub enum Observation<'a> {
    Values(&'a [(String, f64)]),
    Fault {
        code: &'a str,
        cleared: bool,
    },
    /// the device spoke after being offline
    BackOnline,
    /// the sweeper found the device silent (or it said offline) since `since`
    StillOffline {
        since: DateTime<Utc>,
    },
}

fn hold(
    live: &mut LiveState,
    rule: &AlarmRule,
    breach: Option<bool>,
    now: DateTime<Utc>,
    value: Option<f64>,
    detail: String,
) -> Option<Action> {
    let id = rule.id;
    match breach? {
        true => {
            let since = *live.breach_since.entry(id).or_insert(now);
            if now - since >= rule.duration() && !live.alarms.contains_key(&id) {
                live.alarms.insert(id, rule.kind);
                return Some(Action::Raise { rule: id, value, detail });
            }
            None
        }
        false => {
            live.breach_since.remove(&id);
            live.alarms.remove(&id).map(|_| Action::Resolve { rule: id })
        }
    }
}

fn fmt(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Applies an observation to the live state (values, faults, meter track, status) and
/// returns what the rules decide. `rules` are the rules that apply to the device.
pub fn observe(live: &mut LiveState, rules: &[&AlarmRule], obs: &Observation<'_>, now: DateTime<Utc>) -> Vec<Action> {
    let mut out = Vec::new();
    match obs {
        Observation::Values(values) => {
            let reading = values.iter().find(|(k, _)| k == "reading").map(|(_, v)| *v);
            // meter: the increase since the last reading, judged against the trailing mean
            let mut delta = None;
            if let Some(r) = reading {
                let track = live.meter.get_or_insert_with(|| MeterTrack { last: r, ..MeterTrack::default() });
                if track.samples > 0 || track.last != r {
                    delta = Some(r - track.last);
                }
                track.last = r;
            }
            for rule in rules {
                let a = match rule.kind {
                    RuleKind::Threshold => {
                        let Some(v) = values.iter().find(|(k, _)| *k == rule.metric).map(|(_, v)| *v) else {
                            continue;
                        };
                        let t = rule.threshold.unwrap_or(0.0);
                        let op = rule.op.unwrap_or(RuleOp::Above);
                        let breach = if op == RuleOp::Below { v < t } else { v > t };
                        let word = op.word();
                        hold(
                            live,
                            rule,
                            Some(breach),
                            now,
                            Some(v),
                            format!("{} = {} {word} {}", rule.metric, fmt(v), fmt(t)),
                        )
                    }
                    RuleKind::Jump => {
                        let (Some(d), Some(track)) = (delta, live.meter.as_ref()) else { continue };
                        let k = rule.factor.unwrap_or(5.0);
                        let breach = track.samples >= 5 && track.mean_delta > 0.0 && d > k * track.mean_delta;
                        let detail =
                            format!("读数增加 {}，超过近期平均 {} 的 {} 倍", fmt(d), fmt(track.mean_delta), fmt(k));
                        hold(live, rule, Some(breach), now, Some(d), detail)
                    }
                    RuleKind::ReverseFlow => {
                        let Some(d) = delta else { continue };
                        hold(live, rule, Some(d < 0.0), now, Some(d), format!("读数倒转 {}", fmt(d)))
                    }
                    RuleKind::NightFlow => {
                        let Some(d) = delta else { continue };
                        let hour = now.with_timezone(&BUSINESS_TZ).hour();
                        // judged at night only: flow all night is a leak, a still night clears it
                        if hour >= 5 {
                            if d > 0.0 {
                                continue;
                            }
                            hold(live, rule, Some(false), now, Some(d), String::new())
                        } else {
                            hold(live, rule, Some(d > 0.0), now, Some(d), "夜间持续用水，疑似漏水".into())
                        }
                    }
                    _ => None,
                };
                out.extend(a);
            }
            // learn the normal increase from normal readings only
            if let (Some(d), Some(track)) = (delta, live.meter.as_mut()) {
                let anomalous = out.iter().any(|a| matches!(a, Action::Raise { .. }))
                    || (track.samples >= 5 && track.mean_delta > 0.0 && d > 5.0 * track.mean_delta);
                if d >= 0.0 && !anomalous {
                    track.mean_delta =
                        if track.samples == 0 { d } else { track.mean_delta + (d - track.mean_delta) * 0.2 };
                    track.samples = track.samples.saturating_add(1);
                }
            }
            for (k, v) in values.iter() {
                live.values.insert(k.clone(), serde_json::json!(v));
            }
        }
        Observation::Fault { code, cleared } => {
            if *cleared {
                live.faults.remove(*code);
            } else {
                live.faults.insert((*code).to_owned());
            }
            let faults: Vec<&&AlarmRule> = rules.iter().filter(|r| r.kind == RuleKind::Fault).collect();
            let named = |c: &str| faults.iter().any(|r| r.codes.iter().any(|x| x == c));
            for rule in &faults {
                let id = rule.id;
                // a rule naming codes answers to them; a rule naming none answers to the rest
                let still = |c: &str| {
                    if rule.codes.is_empty() { !named(c) } else { rule.codes.iter().any(|x| x == c) }
                };
                if !cleared && still(code) && !live.alarms.contains_key(&id) {
                    live.alarms.insert(id, RuleKind::Fault);
                    out.push(Action::Raise { rule: id, value: None, detail: format!("故障代码 {code}") });
                } else if *cleared && live.alarms.contains_key(&id) && !live.faults.iter().any(|c| still(c)) {
                    live.alarms.remove(&id);
                    out.push(Action::Resolve { rule: id });
                }
            }
        }
        Observation::BackOnline => {
            for rule in rules.iter().filter(|r| r.kind == RuleKind::Offline) {
                if live.alarms.remove(&rule.id).is_some() {
                    out.push(Action::Resolve { rule: rule.id });
                }
            }
        }
        Observation::StillOffline { since } => {
            for rule in rules.iter().filter(|r| r.kind == RuleKind::Offline) {
                let id = rule.id;
                if now - *since >= rule.duration() && !live.alarms.contains_key(&id) {
                    live.alarms.insert(id, RuleKind::Offline);
                    let minutes = (now - *since).num_minutes();
                    out.push(Action::Raise { rule: id, value: None, detail: format!("设备离线 {minutes} 分钟") });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iot::alarms::model::Severity;
    use crate::iot::telemetry::model::LiveStatus;
    use chrono::TimeZone;

    fn rule(kind: &str, f: impl FnOnce(&mut AlarmRule)) -> AlarmRule {
        let mut r = AlarmRule {
            id: Uuid::now_v7(),
            company_id: Uuid::nil(),
            project_id: None,
            category: None,
            device_id: None,
            name: kind.into(),
            kind: RuleKind::parse(kind).unwrap(),
            metric: String::new(),
            op: None,
            threshold: None,
            codes: vec![],
            duration_secs: 0,
            factor: None,
            severity: Severity::Major,
            escalate_after_secs: 900,
            enabled: true,
        };
        f(&mut r);
        r
    }

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        BUSINESS_TZ.with_ymd_and_hms(2026, 11, 27, h, m, 0).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn threshold_needs_its_duration_and_clears_itself() {
        let r = rule("threshold", |r| {
            r.metric = "pressureMpa".into();
            r.op = Some(RuleOp::Below);
            r.threshold = Some(0.2);
            r.duration_secs = 60;
        });
        let mut live = LiveState::default();
        let low = [("pressureMpa".to_owned(), 0.1)];
        assert!(observe(&mut live, &[&r], &Observation::Values(&low), at(10, 0)).is_empty());
        let a = observe(&mut live, &[&r], &Observation::Values(&low), at(10, 1));
        assert!(matches!(a.as_slice(), [Action::Raise { .. }]), "{a:?}");
        assert!(observe(&mut live, &[&r], &Observation::Values(&low), at(10, 2)).is_empty(), "raised once");
        live.derive_status();
        assert_eq!(live.status, LiveStatus::Fault);
        let ok = [("pressureMpa".to_owned(), 0.4)];
        assert_eq!(
            observe(&mut live, &[&r], &Observation::Values(&ok), at(10, 3)),
            vec![Action::Resolve { rule: r.id }]
        );
        live.derive_status();
        assert_eq!(live.status, LiveStatus::Normal);
    }

    #[test]
    fn meter_anomalies() {
        let jump = rule("jump", |r| r.factor = Some(5.0));
        let reverse = rule("reverse_flow", |_| {});
        let rules = [&jump, &reverse];
        let mut live = LiveState::default();
        let mut reading = 100.0;
        for i in 0..8 {
            reading += 1.0;
            let v = [("reading".to_owned(), reading)];
            assert!(observe(&mut live, &rules, &Observation::Values(&v), at(10, i)).is_empty());
        }
        let v = [("reading".to_owned(), reading + 20.0)];
        let a = observe(&mut live, &rules, &Observation::Values(&v), at(11, 0));
        assert!(matches!(a.as_slice(), [Action::Raise { rule, .. }] if *rule == jump.id), "{a:?}");
        let v = [("reading".to_owned(), reading + 21.0)];
        assert_eq!(
            observe(&mut live, &rules, &Observation::Values(&v), at(11, 1)),
            vec![Action::Resolve { rule: jump.id }]
        );
        let v = [("reading".to_owned(), reading + 10.0)];
        let a = observe(&mut live, &rules, &Observation::Values(&v), at(11, 2));
        assert!(matches!(a.as_slice(), [Action::Raise { rule, .. }] if *rule == reverse.id), "{a:?}");
    }

    #[test]
    fn night_flow_is_a_leak_and_a_still_night_clears_it() {
        let leak = rule("night_flow", |r| r.duration_secs = 2 * 3600);
        let mut live = LiveState::default();
        let mut reading = 10.0;
        let mut raised = 0;
        for h in 0..4 {
            for m in [0, 30] {
                reading += 0.05;
                let v = [("reading".to_owned(), reading)];
                raised += observe(&mut live, &[&leak], &Observation::Values(&v), at(h, m)).len();
            }
        }
        assert_eq!(raised, 1, "one alarm after two hours of flow");
        let v = [("reading".to_owned(), reading)];
        assert_eq!(
            observe(&mut live, &[&leak], &Observation::Values(&v), at(4, 30)),
            vec![Action::Resolve { rule: leak.id }]
        );
        // daytime use is no leak
        let mut live = LiveState::default();
        for h in 8..12 {
            reading += 1.0;
            let v = [("reading".to_owned(), reading)];
            assert!(observe(&mut live, &[&leak], &Observation::Values(&v), at(h, 0)).is_empty());
        }
    }

    #[test]
    fn fault_codes_go_to_the_rule_that_names_them() {
        let any = rule("fault", |_| {});
        let trapped = rule("fault", |r| r.codes = vec!["TRAPPED".into()]);
        let rules = [&any, &trapped];
        let mut live = LiveState::default();
        let a = observe(&mut live, &rules, &Observation::Fault { code: "TRAPPED", cleared: false }, at(9, 0));
        assert!(matches!(a.as_slice(), [Action::Raise { rule, .. }] if *rule == trapped.id), "{a:?}");
        let a = observe(&mut live, &rules, &Observation::Fault { code: "E21", cleared: false }, at(9, 1));
        assert!(matches!(a.as_slice(), [Action::Raise { rule, .. }] if *rule == any.id), "{a:?}");
        let a = observe(&mut live, &rules, &Observation::Fault { code: "TRAPPED", cleared: true }, at(9, 2));
        assert_eq!(a, vec![Action::Resolve { rule: trapped.id }]);
        live.derive_status();
        assert_eq!(live.status, LiveStatus::Fault, "E21 still open");
    }

    #[test]
    fn offline_for_n_minutes_then_back() {
        let off = rule("offline", |r| r.duration_secs = 600);
        let mut live = LiveState::default();
        let since = at(9, 0);
        assert!(observe(&mut live, &[&off], &Observation::StillOffline { since }, at(9, 5)).is_empty());
        assert_eq!(observe(&mut live, &[&off], &Observation::StillOffline { since }, at(9, 10)).len(), 1);
        assert!(observe(&mut live, &[&off], &Observation::StillOffline { since }, at(9, 15)).is_empty());
        assert_eq!(
            observe(&mut live, &[&off], &Observation::BackOnline, at(9, 20)),
            vec![Action::Resolve { rule: off.id }]
        );
    }
}
