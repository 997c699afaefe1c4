/* Synthetic input for the dialog test under Xvfb (XTest): each argument is one action.
 *   move:X,Y          moves the pointer to root coordinates X,Y
 *   click             clicks the left button
 *   key:SPEC          presses and releases a key with modifiers, e.g. key:alt+k, key:ctrl+z, key:Down
 *   sleep:MS          waits
 *   focus             prints the window that has the keyboard focus
 *   pointer-focus     gives the keyboard focus to whatever window is under the pointer (there is no window
 *                     manager under Xvfb to do it)
 */
#include <X11/Xlib.h>
#include <X11/extensions/XTest.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void pause_ms (long ms) {
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  nanosleep (&ts, NULL);
}

static int key (Display *d, const char *spec) {
  char buf[128];
  KeyCode mods[4];
  int n = 0;
  snprintf (buf, sizeof buf, "%s", spec);
  char *save = NULL, *part = strtok_r (buf, "+", &save), *last = NULL;
  for (; part; part = strtok_r (NULL, "+", &save)) {
    if (last) {
      const char *sym = strcmp (last, "ctrl") == 0 ? "Control_L" : strcmp (last, "alt") == 0 ? "Alt_L"
                      : strcmp (last, "shift") == 0 ? "Shift_L" : last;
      if (n < 4)
        mods[n++] = XKeysymToKeycode (d, XStringToKeysym (sym));
    }
    last = part;
  }
  KeySym ks = last ? XStringToKeysym (last) : NoSymbol;
  KeyCode kc = ks != NoSymbol ? XKeysymToKeycode (d, ks) : 0;
  if (!kc) {
    fprintf (stderr, "xtest-input: unknown key '%s'\n", spec);
    return 1;
  }
  for (int i = 0; i < n; i++)
    XTestFakeKeyEvent (d, mods[i], True, CurrentTime);
  XTestFakeKeyEvent (d, kc, True, CurrentTime);
  XTestFakeKeyEvent (d, kc, False, CurrentTime);
  for (int i = n - 1; i >= 0; i--)
    XTestFakeKeyEvent (d, mods[i], False, CurrentTime);
  return 0;
}

int main (int argc, char **argv) {
  Display *d = XOpenDisplay (NULL);
  int ev, err, major, minor;
  if (!d || !XTestQueryExtension (d, &ev, &err, &major, &minor)) {
    fprintf (stderr, "xtest-input: no X display with the XTest extension\n");
    return 1;
  }
  int rc = 0;
  for (int i = 1; i < argc && rc == 0; i++) {
    int x, y;
    if (sscanf (argv[i], "move:%d,%d", &x, &y) == 2)
      XTestFakeMotionEvent (d, -1, x, y, CurrentTime);
    else if (strcmp (argv[i], "click") == 0) {
      XTestFakeButtonEvent (d, 1, True, CurrentTime);
      XTestFakeButtonEvent (d, 1, False, CurrentTime);
    } else if (strncmp (argv[i], "key:", 4) == 0)
      rc = key (d, argv[i] + 4);
    else if (strncmp (argv[i], "sleep:", 6) == 0) {
      XSync (d, False);
      pause_ms (atol (argv[i] + 6));
    } else if (strcmp (argv[i], "focus") == 0) {
      Window w;
      int revert;
      XGetInputFocus (d, &w, &revert);
      printf ("focus 0x%lx revert %d\n", (unsigned long) w, revert);
    } else if (strcmp (argv[i], "pointer-focus") == 0)
      XSetInputFocus (d, PointerRoot, RevertToPointerRoot, CurrentTime);
    else {
      fprintf (stderr, "xtest-input: unknown action '%s'\n", argv[i]);
      rc = 2;
    }
    XSync (d, False);
    pause_ms (50);
  }
  XCloseDisplay (d);
  return rc;
}
